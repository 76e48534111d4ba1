import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The BPF object that `make` builds and the addon carries (no root needed: here beside the other
// tests of the built addon). It is the sensor's resident memory: the addon used to copy the whole
// object into a Buffer when it loaded, kept for the life of the process.
const OBJ = join(__dirname, '..', '..', 'bpf', '.output', 'ctrwatch.bpf.o');
const ADDON = join(__dirname, '..', '..', 'build', 'Release', 'ctrwatch.node');

const sections = (): string[] =>
  execFileSync('readelf', ['-W', '-S', OBJ])
    .toString()
    .split('\n')
    .map((l) => /^\s*\[\s*\d+\]\s+(\S+)/.exec(l)?.[1])
    .filter((s): s is string => Boolean(s));

describe('the built BPF object', () => {
  it('keeps the BTF that CO-RE and the verifier use, and neither DWARF nor the relocations meant for a linker', () => {
    const s = sections();
    expect(s).toContain('.BTF');
    expect(s).toContain('.BTF.ext');
    expect(s.filter((x) => x.startsWith('.debug_') || x.startsWith('.rel.debug_') || x.startsWith('.rel.BTF'))).toEqual([]);
  });

  it('is handed out by the addon only when asked, a copy each time, and nothing of it kept in its exports', () => {
    const child = `
      const addon = require(process.argv[1]);
      const held = Object.entries(addon).filter(([, v]) => v instanceof Uint8Array).map(([k]) => k);
      const a = addon.object(), b = addon.object();
      a[0] ^= 0xff;
      const sha = require('node:crypto').createHash('sha256').update(b).digest('hex');
      process.stdout.write(JSON.stringify({ type: typeof addon.object, held, sha, copies: a[0] !== b[0] }));`;
    const r = spawnSync(process.execPath, ['-e', child, ADDON], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { type: string; held: string[]; sha: string; copies: boolean };
    expect(out.type).toBe('function');
    expect(out.held).toEqual([]);
    expect(out.copies).toBe(true);
    expect(out.sha).toBe(createHash('sha256').update(readFileSync(OBJ)).digest('hex'));
  });
});
