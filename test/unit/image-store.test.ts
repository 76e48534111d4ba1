import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ImageStore } from '../../src/detect/image-store';

const dirs: string[] = [];
const dir = () => {
  const d = mkdtempSync(join(tmpdir(), 'cw-images-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A logger that keeps what it was told. */
function capture() {
  const lines: { msg: string; [k: string]: unknown }[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { log, lines };
}

describe('image first-seen store', () => {
  it('keeps what it saw across restarts; a missing store is not an error', () => {
    const d = dir();
    const { log, lines } = capture();
    const a = new ImageStore(d, log);
    expect(a.fresh).toBe(true);
    expect(a.add('img@sha256:1')).toBe(true);
    const b = new ImageStore(d, log);
    expect(b.fresh).toBe(false);
    expect(b.add('img@sha256:1')).toBe(false);
    expect(a.errors).toEqual({ read: 0, write: 0 });
    expect(lines).toEqual([]);
  });

  it('counts and logs an unreadable store, and sets it aside instead of overwriting it', () => {
    const d = dir();
    writeFileSync(join(d, 'images-seen.json'), '{"img": 1, oops');
    const { log, lines } = capture();
    const s = new ImageStore(d, log);
    expect(s.errors.read).toBe(1);
    expect(lines.map((l) => l.msg)).toEqual(['image store unreadable: images seen before count as new']);
    const aside = readdirSync(d).filter((n) => n.startsWith('images-seen.json.unreadable-'));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(d, aside[0]), 'utf8')).toBe('{"img": 1, oops');
  });

  it('counts every failed write and logs it once per distinct error', () => {
    const d = dir();
    // Root ignores mode bits: a file where the state directory should be fails for everyone.
    const blocked = join(d, 'file-not-dir');
    writeFileSync(blocked, '');
    const { log, lines } = capture();
    const s = new ImageStore(blocked, log);
    expect(s.add('a')).toBe(true);
    expect(s.add('b')).toBe(true);
    expect(s.add('c')).toBe(true);
    expect(s.errors.write).toBe(3);
    expect(lines.filter((l) => l.msg.startsWith('image store not written'))).toHaveLength(1);
  });
});
