// The console's store and query API, on an SQLite file of its own: events in, the views' answers
// out, bad parameters refused with a clear message, resends not stored twice, and retention by
// age and by size that keeps the newest.

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { attackMatrix, getContainer, getEvent, listContainers, listEvents, sensors } from '../../src/console/api';
import { QueryError } from '../../src/console/filters';
import { EventStore } from '../../src/console/store';

const logger = pino({ level: 'silent' });
const H = { node: 'node-a', bootId: 'boot-1', instanceId: 'inst-1' };
const dirs: string[] = [];
const stores: EventStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function open(o: { now?: () => number; maxAgeMs?: number; maxBytes?: number; walMaxFrames?: number } = {}): {
  store: EventStore;
  file: string;
} {
  const dir = mkdtempSync(join(tmpdir(), 'cw-console-'));
  dirs.push(dir);
  const file = join(dir, 'console.sqlite');
  const store = new EventStore({ file, logger, retainEveryMs: 0, ...o });
  stores.push(store);
  return { store, file };
}

const ns = (ms: number) => String(BigInt(ms) * 1_000_000n);
const C = { id: 'c0ffee', runtime: 'DOCKER', image: 'localhost/busybox:latest', name: 'web', labels: { team: 'a' } };
const P = (pid: number, exe: string, argv: string[]) => ({ pid, exe, argv, uid: 0, euid: 0, capEffective: ['CAP_SYS_ADMIN'] });

function lifecycle(t0: number, seq0 = 1, c: Record<string, unknown> = C): Record<string, unknown>[] {
  const head = (i: number) => ({ seq: String(seq0 + i), timeUnixNano: ns(t0 + i * 10), node: H.node, bootId: H.bootId });
  return [
    { ...head(0), containerCreated: { container: { ...c, privileged: true } } },
    { ...head(1), containerStarted: { container: c, process: P(100, '/bin/sh', ['sh', '-c', 'sleep 1']) } },
    { ...head(2), containerExec: { container: c, process: P(101, '/bin/id', ['id']) } },
    {
      ...head(3),
      detection: {
        ruleId: 'escape.kernel-control-write',
        techniques: ['T1611'],
        severity: 'CRITICAL',
        message: 'release_agent written',
        container: c,
        chain: [P(102, '/bin/sh', ['sh', '-c', 'echo x > release_agent']), P(100, '/bin/sh', ['sh'])],
        attributes: { file: '/tmp/cg/release_agent' },
      },
    },
    { ...head(4), containerExited: { container: c, exitCode: 137, signal: 9 } },
  ];
}

describe('console store and query API', () => {
  it('answers the feed, filters, a container with its timeline, a detection, the matrix and the fleet', () => {
    const now = Date.now();
    const { store } = open({ now: () => now });
    store.ingest(H, [
      { seq: '1', timeUnixNano: ns(now - 1000), node: H.node, bootId: H.bootId, sensorReady: { version: '0.1.0', kernelRelease: '6.18' } },
    ]);
    store.ingest(H, lifecycle(now - 900, 2));
    store.ingest(H, [
      {
        seq: '7',
        timeUnixNano: ns(now - 500),
        node: H.node,
        bootId: H.bootId,
        sensorStats: { eventsEmitted: '100', ringBufferDrops: '3' },
      },
      {
        seq: '8',
        timeUnixNano: ns(now - 400),
        node: H.node,
        bootId: H.bootId,
        sensorStats: { eventsEmitted: '150', ringBufferDrops: '4', counters: { 'sink.grpc://c:1.spooled_events': '12' } },
      },
    ]);
    const db = store.db;
    const all = listEvents(db, new URLSearchParams()) as any;
    expect(all.events.map((e: any) => e.seq)).toEqual(['8', '7', '6', '5', '4', '3', '2', '1']);
    const dets = listEvents(db, new URLSearchParams({ technique: 'T1611', severity: 'HIGH' })) as any;
    expect(dets.events).toHaveLength(1);
    expect(listEvents(db, new URLSearchParams({ severity: 'CRITICAL', rule: 'escape.other' })).events).toEqual([]);
    expect((listEvents(db, new URLSearchParams({ q: 'RELEASE_AGENT' })) as any).events.map((e: any) => e.seq)).toEqual(['5']);
    expect((listEvents(db, new URLSearchParams({ q: '50%_' })) as any).events).toEqual([]);
    const page = listEvents(db, new URLSearchParams({ limit: '3' })) as any;
    expect(page.next).toBe(page.events[2].id);
    expect((listEvents(db, new URLSearchParams({ limit: '3', before: String(page.next) })) as any).events[0].seq).toBe('5');

    const c = getContainer(db, H.node, 'c0ffee', new URLSearchParams()) as any;
    expect(c.timeline.map((e: any) => Object.keys(e).find((k) => k.startsWith('container')))).toEqual([
      'containerCreated',
      'containerStarted',
      'containerExec',
      'containerExited',
    ]);
    expect(c.container).toMatchObject({ privileged: true, exit_code: 137, signal: 9, execs: 1, detections: 1, image: C.image });
    expect(c.container.container.labels).toEqual({ team: 'a' });
    expect(c.detections[0].detection.ruleId).toBe('escape.kernel-control-write');
    expect((listContainers(db, new URLSearchParams({ running: 'false', node: 'node-a' })) as any).containers).toHaveLength(1);
    expect((listContainers(db, new URLSearchParams({ running: 'true' })) as any).containers).toHaveLength(0);

    const d = getEvent(db, String(dets.events[0].id), new URLSearchParams()) as any;
    expect(d.event.detection.chain.map((p: any) => p.pid)).toEqual([102, 100]);
    expect(d.container.id).toBe('c0ffee');

    const m = attackMatrix(db, new URLSearchParams({ window: '1h' }), now) as any;
    expect(m.counts).toEqual({ 'node-a': { T1611: 1 } });
    expect(m.techniques.map((t: any) => t.id)).toEqual(['T1610', 'T1611', 'T1613', 'T1053.007', 'T1543.005', 'T1204.003']);
    expect((attackMatrix(db, new URLSearchParams({ window: '15m' }), now + 3_600_000) as any).counts).toEqual({});

    const s = (sensors(db, new URLSearchParams(), now) as any).sensors[0];
    expect(s).toMatchObject({ node: 'node-a', version: '0.1.0', kernelDrops: 4, spoolEvents: 12, silent: false, eventsPerSecond: 500 });
    store.ingest(H, [
      { timeUnixNano: ns(now), node: H.node, bootId: H.bootId, sensorSilent: { instanceId: H.instanceId, silentForMs: '5000' } },
    ]);
    expect((sensors(db, new URLSearchParams(), now) as any).sensors[0].silent).toBe(true);
  });

  it('refuses bad parameters with a message naming them', () => {
    const { store } = open();
    const db = store.db;
    const bad = (f: () => unknown, msg: RegExp) => expect(f).toThrowError(msg);
    bad(
      () => listEvents(db, new URLSearchParams({ severity: 'SEVERE' })),
      /severity: 'SEVERE' is not one of INFO, LOW, MEDIUM, HIGH, CRITICAL/,
    );
    bad(() => listEvents(db, new URLSearchParams({ limit: '0' })), /limit: '0' is not a whole number from 1 to 500/);
    bad(() => listEvents(db, new URLSearchParams({ colour: 'red' })), /unknown parameter 'colour'/);
    bad(() => listEvents(db, new URLSearchParams('node=a&node=b')), /'node' given more than once/);
    bad(() => listEvents(db, new URLSearchParams({ node: "a' OR 1=1 --" })), /is not a node name/);
    bad(() => listEvents(db, new URLSearchParams({ since: 'yesterday' })), /since: 'yesterday' is neither/);
    bad(() => listEvents(db, new URLSearchParams({ technique: 'T9999' })), /technique: 'T9999' is not one of/);
    bad(() => attackMatrix(db, new URLSearchParams({ window: '2w' }), 0), /window: '2w' is not one of 15m/);
    bad(() => getEvent(db, 'abc', new URLSearchParams()), /event id 'abc' is not a whole number/);
    expect(() => listEvents(db, new URLSearchParams({ kind: 'bogus' }))).toThrowError(QueryError);
  });

  it('stores a resent batch once (a collector restart between insert and log commit)', () => {
    const { store } = open();
    const evs = lifecycle(Date.now(), 1);
    store.ingest(H, evs);
    store.ingest(H, evs);
    expect(store.counters).toMatchObject({ inserted: 5, ignored: 5, failures: 0 });
    expect((listEvents(store.db, new URLSearchParams()) as any).events).toHaveLength(5);
    expect((getContainer(store.db, H.node, 'c0ffee', new URLSearchParams()) as any).container.detections).toBe(1);
  });

  it('checkpoints run in a worker: the database file takes the WAL in while no commit runs one', async () => {
    const { store, file } = open();
    expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const before = statSync(file).size;
    store.ingest(H, lifecycle(Date.now(), 1));
    const wal = statSync(`${file}-wal`).size;
    expect(wal).toBeGreaterThan(0);
    const until = Date.now() + 5000;
    while (statSync(file).size <= before && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(statSync(file).size).toBeGreaterThan(before);
  });

  it('the WAL starts over under a steady stream of commits instead of growing without end', async () => {
    const limit = 200;
    const { store, file } = open({ walMaxFrames: limit });
    let seq = 0;
    const add = () => {
      const batch = lifecycle(Date.now(), seq + 1, { ...C, id: `c${seq % 50}` });
      seq += batch.length;
      store.ingest(H, batch);
    };
    const until = Date.now() + 8000;
    while (store.counters.walRestarts < 2 && Date.now() < until) {
      add();
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(store.counters.walRestarts).toBeGreaterThanOrEqual(2);
    add(); // the first commit after a restart writes the WAL from its start and cuts the file back
    expect(statSync(`${file}-wal`).size).toBeLessThanOrEqual(limit * 4096 * 2);
    expect((store.db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n).toBe(seq);
  });

  it('retention by age deletes events, techniques and containers older than the limit, and keeps the rest', async () => {
    let now = Date.now();
    const { store } = open({ now: () => now, maxAgeMs: 60_000 });
    store.ingest(H, lifecycle(now - 120_000, 1, { ...C, id: 'old' }));
    store.ingest(H, lifecycle(now - 1000, 6, { ...C, id: 'new' }));
    expect(await store.retain()).toBe(5);
    const left = (listEvents(store.db, new URLSearchParams()) as any).events;
    expect(left.map((e: any) => e.seq)).toEqual(['10', '9', '8', '7', '6']);
    expect((listContainers(store.db, new URLSearchParams()) as any).containers.map((c: any) => c.id)).toEqual(['new']);
    expect((attackMatrix(store.db, new URLSearchParams({ window: 'all' }), now) as any).counts['node-a'].T1611).toBe(1);
    now += 3_600_000;
    await store.retain();
    expect((listEvents(store.db, new URLSearchParams()) as any).events).toEqual([]);
  });

  it('retention by size keeps the database under the limit, dropping the oldest events first', async () => {
    const now = Date.now();
    const maxBytes = 2 << 20;
    const { store, file } = open({ now: () => now, maxBytes });
    const pad = 'x'.repeat(900);
    let seq = 0;
    for (let b = 0; b < 60; b++) {
      const batch = [];
      for (let i = 0; i < 100; i++) {
        seq++;
        batch.push({
          seq: String(seq),
          timeUnixNano: ns(now - 100_000 + seq),
          node: H.node,
          bootId: H.bootId,
          containerExec: { container: { ...C, id: `c${seq % 7}` }, process: P(seq, '/bin/echo', ['echo', pad]) },
        });
      }
      store.ingest(H, batch);
    }
    expect(store.usedBytes()).toBeGreaterThan(maxBytes * 2);
    const deleted = await store.retain();
    expect(deleted).toBeGreaterThan(0);
    expect(store.usedBytes()).toBeLessThanOrEqual(maxBytes);
    // The file itself shrank too (incremental vacuum), not only the pages in use.
    expect(statSync(file).size).toBeLessThanOrEqual(maxBytes * 1.1);
    const newest = (listEvents(store.db, new URLSearchParams({ limit: '1' })) as any).events[0];
    expect(newest.seq).toBe(String(seq));
    const count = store.db.prepare('SELECT count(*) AS n, min(seq) AS lo FROM events').get() as { n: number; lo: number };
    expect(count.n).toBe(seq - deleted);
    expect(count.lo).toBe(deleted + 1); // exactly the oldest went
  });
});
