import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CgroupRegistry } from '../../src/container/cgroups';
import { Lifecycle } from '../../src/container/lifecycle';
import type { Namespaces } from '../../src/decode/records';
import { Detector } from '../../src/detect/detector';
import { ImageStore } from '../../src/detect/image-store';
import { DEFAULT_POLICY } from '../../src/detect/policy';
import { ProcessTable } from '../../src/process/table';
import { SensorMetrics } from '../../src/telemetry/metrics';
import { buildSensorStats, countersFrom } from '../../src/telemetry/stats-event';

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

function detectorWith(images: ImageStore): Detector {
  const procs = new ProcessTable();
  const host = { mnt: 1, pid: 2, net: 3, ipc: 4, uts: 5, cgroup: 6, user: 7, time: 8 } as unknown as Namespaces;
  return new Detector({
    procs,
    lifecycle: new Lifecycle(procs, host),
    cgroups: new CgroupRegistry({ mode: 'v2', subsys: -1, hierarchy: 0, controller: 'cgroup2' }),
    host,
    policy: DEFAULT_POLICY,
    wall: (k) => k,
    logger: pino({ level: 'silent' }),
    images,
    containerOf: () => ({ k: { id: 'c1', name: 'c1', runtime: 'RUNC' }, meta: { container: {}, problems: [] } }),
  });
}

describe('image first-seen store', () => {
  it('keeps what it saw across restarts; a missing store is not an error', () => {
    const d = dir();
    const { log, lines } = capture();
    const a = new ImageStore(d, log);
    expect(a.fresh).toBe(true);
    expect(a.add('img@sha256:1')).toBe(true);
    a.flush();
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
    s.flush();
    // Not written, so tried again at each flush, with nothing new added too.
    s.flush();
    expect(s.add('c')).toBe(true);
    s.flush();
    expect(s.errors.write).toBe(3);
    expect(lines.filter((l) => l.msg.startsWith('image store not written'))).toHaveLength(1);
  });

  it('writes at flush only, once for many new images, and not again until one more is added', () => {
    const d = dir();
    const file = join(d, 'images-seen.json');
    const s = new ImageStore(d);
    for (let i = 0; i < 100; i++) expect(s.add(`img@sha256:${i}`)).toBe(true);
    expect(existsSync(file)).toBe(false);
    s.flush();
    expect(Object.keys(JSON.parse(readFileSync(file, 'utf8')) as object)).toHaveLength(100);
    // A flush with nothing new leaves the file alone: a marker written into it stays.
    writeFileSync(file, '{"marker": 1}');
    expect(s.add('img@sha256:5')).toBe(false);
    s.flush();
    expect(readFileSync(file, 'utf8')).toBe('{"marker": 1}');
    expect(s.add('img@sha256:new')).toBe(true);
    s.flush();
    expect(Object.keys(JSON.parse(readFileSync(file, 'utf8')) as object)).toHaveLength(101);
    expect(s.errors).toEqual({ read: 0, write: 0 });
  });

  it("the detector writes it when told (the pipeline's upkeep sweep and its stop)", () => {
    const d = dir();
    const file = join(d, 'images-seen.json');
    const images = new ImageStore(d);
    const det = detectorWith(images);
    images.add('img@sha256:a');
    expect(existsSync(file)).toBe(false);
    det.flushImages();
    expect(Object.keys(JSON.parse(readFileSync(file, 'utf8')) as object)).toEqual(['img@sha256:a']);
  });

  it('its errors reach sensorStats and /metrics, by op', async () => {
    const d = dir();
    writeFileSync(join(d, 'file-not-dir'), '');
    const images = new ImageStore(join(d, 'file-not-dir'), pino({ level: 'silent' }));
    const det = detectorWith(images);
    images.add('a');
    det.flushImages();
    images.add('b');
    det.flushImages();
    expect(det.imageStoreErrors()).toEqual({ read: 1, write: 2 }); // a file where its directory should be: ENOTDIR both ways
    const counters = countersFrom(
      { kernel: {}, records: 0, dropped: 0 },
      { events: 0, detections: 0, processes: 0, containers: 0, imageStoreErrors: det.imageStoreErrors() },
    );
    expect(buildSensorStats(counters).counters).toMatchObject({ 'image_store.read_errors': 1n, 'image_store.write_errors': 2n });
    const text = await new SensorMetrics({ read: () => counters }).registry.metrics();
    expect(text).toContain('ctrwatch_image_store_errors_total{op="write"} 2');
    expect(text).toContain('ctrwatch_image_store_errors_total{op="read"} 1');
  });
});
