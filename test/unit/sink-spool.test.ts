import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { Spool, type SpoolBatch, type SpoolOptions } from '../../src/sinks/spool/spool';
import { EventClass, type DropReason, type SinkEvent } from '../../src/sinks/types';

const logger = pino({ level: 'silent' });
const ev = (seq: number, cls: EventClass, size = 100): SinkEvent => ({
  event: {},
  bytes: Buffer.alloc(size, seq & 0xff),
  seq: BigInt(seq),
  cls,
  offeredMs: Date.now(),
});

function open(dir: string, instanceId: string, over: Partial<SpoolOptions> = {}) {
  const drops: Record<string, number> = {};
  const spool = Spool.open({
    dir,
    identity: { instanceId, node: 'n', bootId: 'b' },
    maxBytes: 1 << 20,
    segmentBytes: 1240,
    fsync: 'never',
    logger,
    onDrop: (reason: DropReason, cls: EventClass, n: number) => (drops[`${reason}.${cls}`] = (drops[`${reason}.${cls}`] ?? 0) + n),
    ...over,
  });
  return { spool, drops };
}

async function readAll(spool: Spool): Promise<{ seqs: number[]; batches: SpoolBatch[] }> {
  const seqs: number[] = [];
  const batches: SpoolBatch[] = [];
  for (let b = await spool.next(7, 1 << 20); b; b = await spool.next(7, 1 << 20)) {
    seqs.push(...b.records.map((r) => Number(r.seq)));
    batches.push(b);
  }
  return { seqs, batches };
}

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrwatch-spool-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('Spool', () => {
  it('gives back what was appended in seq order across classes, and rewinds to the last ack', async () => {
    const { spool } = open(tmp(), 'i1');
    const s = await spool;
    const classes = [1, 2, 0, 1, 1, 2, 0, 1, 1, 1, 2, 2, 0, 1, 1, 1, 1, 1, 1, 2];
    await s.append(classes.map((c, i) => ev(i + 1, c)));
    const { seqs, batches } = await readAll(s);
    expect(seqs).toEqual(classes.map((_, i) => i + 1));
    s.delivered(batches[0]!, batches[0]!.lastSeq);
    for (const b of batches.slice(1)) s.unacknowledged(b);
    s.rewind();
    expect((await readAll(s)).seqs).toEqual(classes.map((_, i) => i + 1).slice(7));
    expect(s.stats().events).toBe(13);
    await s.close();
  });

  it('when full evicts whole segments of the lowest class first, detections last, and counts them', async () => {
    // 124-byte records, 10 a segment, room for 60.
    const { spool, drops } = open(tmp(), 'i1', { maxBytes: 124 * 60 });
    const s = await spool;
    let seq = 0;
    await s.append(Array.from({ length: 20 }, () => ev(++seq, EventClass.Stats)));
    await s.append(Array.from({ length: 20 }, () => ev(++seq, EventClass.Record)));
    await s.append(Array.from({ length: 20 }, () => ev(++seq, EventClass.Detection)));
    expect(drops).toEqual({});
    await s.append(Array.from({ length: 25 }, () => ev(++seq, EventClass.Detection)));
    // 20 stats, then 10 records: the oldest record segment (the 5 over need one more segment).
    expect(drops).toEqual({ 'spool_full.0': 20, 'spool_full.1': 10 });
    await s.append(Array.from({ length: 5 }, () => ev(++seq, EventClass.Detection))); // exactly full now
    expect(drops).toEqual({ 'spool_full.0': 20, 'spool_full.1': 10 });
    await s.append([ev(++seq, EventClass.Stats)]); // a stats event displaces no record: it is dropped
    expect(drops['spool_full.0']).toBe(21);
    const { seqs } = await readAll(s);
    expect(seqs).toEqual([...Array.from({ length: 10 }, (_, i) => 31 + i), ...Array.from({ length: 50 }, (_, i) => 41 + i)]);
    expect(s.stats().bytes).toBeLessThanOrEqual(124 * 60);
    await s.close();
  });

  it('survives a restart: unacknowledged events of the old run come first, under its identity; torn tails are cut', async () => {
    const dir = tmp();
    const a = await open(dir, 'run-1').spool;
    await a.append([1, 2, 3, 4, 5, 6].map((n) => ev(n, EventClass.Record)));
    const first = await a.next(2, 1 << 20);
    a.delivered(first!, 2n);
    await a.close();
    // A write torn by a power loss: half a record at the end of the segment.
    const seg = fs.readdirSync(path.join(dir, 'run-1')).find((f) => f.endsWith('.seg'))!;
    fs.appendFileSync(path.join(dir, 'run-1', seg), Buffer.alloc(30, 7));
    const { spool } = open(dir, 'run-2');
    const b = await spool;
    expect(b.stats()).toMatchObject({ events: 4, runs: 2, corruptSegments: 1 });
    await b.append([ev(1, EventClass.Record), ev(2, EventClass.Detection)]);
    const x = await b.next(100, 1 << 20);
    expect(x!.id.instanceId).toBe('run-1');
    expect(x!.records.map((r) => Number(r.seq))).toEqual([3, 4, 5, 6]);
    b.delivered(x!, 6n);
    const y = await b.next(100, 1 << 20);
    expect(y!.id.instanceId).toBe('run-2');
    expect(y!.records.map((r) => Number(r.seq))).toEqual([1, 2]);
    await new Promise((r) => setTimeout(r, 50));
    expect(fs.existsSync(path.join(dir, 'run-1'))).toBe(false);
    await b.close();
  });

  it('counts a seq that does not increase as bad_seq', async () => {
    const { spool, drops } = open(tmp(), 'i1');
    const s = await spool;
    await s.append([ev(5, 1), ev(5, 1), ev(4, 2)]);
    expect(drops).toEqual({ 'bad_seq.1': 1, 'bad_seq.2': 1 });
    await s.close();
  });
});
