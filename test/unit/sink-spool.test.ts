import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import * as protobuf from 'protobufjs';
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

  describe('damage on disk costs what it damaged, counted and logged', () => {
    // 124-byte records, 10 a segment (segmentBytes 1240).
    async function leftRun(dir: string, n: number, payload?: (seq: number) => Buffer) {
      const a = await open(dir, 'run-1').spool;
      await a.append(
        Array.from({ length: n }, (_, i) => ({ ...ev(i + 1, EventClass.Record), ...(payload ? { bytes: payload(i + 1) } : {}) })),
      );
      await a.close();
      const segs = fs.readdirSync(path.join(dir, 'run-1')).filter((f) => f.endsWith('.seg'));
      return segs.sort().map((f) => path.join(dir, 'run-1', f));
    }

    it('a bad record in mid-segment loses that record only: the intact ones after it are sent', async () => {
      const dir = tmp();
      const [seg] = await leftRun(dir, 10);
      const buf = fs.readFileSync(seg!);
      buf[124 * 3 + 40] ^= 0xff; // a payload byte of the 4th record
      fs.writeFileSync(seg!, buf);
      const { spool, drops } = open(dir, 'run-2');
      const b = await spool;
      const { seqs } = await readAll(b);
      expect(seqs).toEqual([1, 2, 3, 5, 6, 7, 8, 9, 10]);
      expect(drops).toEqual({ 'spool_corrupt.1': 1 });
      expect(b.stats()).toMatchObject({ events: 9, corruptSegments: 1 });
      await b.close();
    });

    it('a torn tail is cut and counted as one lost event', async () => {
      const dir = tmp();
      const [seg] = await leftRun(dir, 6);
      fs.appendFileSync(seg!, Buffer.alloc(30, 7));
      const { spool, drops } = open(dir, 'run-2');
      const b = await spool;
      expect((await readAll(b)).seqs).toEqual([1, 2, 3, 4, 5, 6]);
      expect(drops).toEqual({ 'spool_corrupt.1': 1 });
      expect(fs.statSync(seg!).size).toBe(124 * 6);
      await b.close();
    });

    it('a bad record met while sending the current run skips to the next intact one', async () => {
      const dir = tmp();
      const { spool, drops } = open(dir, 'run-1');
      const s = await spool;
      s.setLive(false); // nothing kept in memory: the sender reads the disk
      await s.append(Array.from({ length: 10 }, (_, i) => ev(i + 1, EventClass.Detection)));
      const seg = fs.readdirSync(path.join(dir, 'run-1')).find((f) => f.endsWith('.seg'))!;
      const fd = fs.openSync(path.join(dir, 'run-1', seg), 'r+');
      fs.writeSync(fd, Buffer.alloc(124 * 2, 0), 0, 124 * 2, 124 * 5); // records 6 and 7 zeroed
      fs.closeSync(fd);
      expect((await readAll(s)).seqs).toEqual([1, 2, 3, 4, 5, 8, 9, 10]);
      expect(drops).toEqual({ 'spool_corrupt.2': 1 });
      await s.close();
    });

    it('an unreadable meta.json: the run is sent under its directory name, node and boot id from its events', async () => {
      const dir = tmp();
      // A ctrwatch.v1.Event with node (3) and boot_id (4), then filler bytes the reader skips.
      const payload = (seq: number) => {
        const w = protobuf.Writer.create();
        w.uint32(8).uint64(seq).uint32(26).string('node-a').uint32(34).string('boot-a');
        return Buffer.from(w.finish());
      };
      await leftRun(dir, 5, payload);
      fs.writeFileSync(path.join(dir, 'run-1', 'meta.json'), '{"instanceId": "run-1", "no');
      const { spool, drops } = open(dir, 'run-2');
      const b = await spool;
      const x = await b.next(100, 1 << 20);
      expect(x!.id).toEqual({ instanceId: 'run-1', node: 'node-a', bootId: 'boot-a' });
      expect(x!.records.map((r) => Number(r.seq))).toEqual([1, 2, 3, 4, 5]);
      expect(drops).toEqual({});
      expect(b.stats().failures).toEqual({ spool_meta_rebuilt: 1 });
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'run-1', 'meta.json'), 'utf8'))).toEqual(x!.id);
      await b.close();
    });

    it('an acked mark larger than any seq on disk deletes nothing: the run is sent again', async () => {
      const dir = tmp();
      const segs = await leftRun(dir, 25);
      expect(segs).toHaveLength(3);
      fs.writeFileSync(path.join(dir, 'run-1', 'acked'), '18446744073709551615');
      const { spool, drops } = open(dir, 'run-2');
      const b = await spool;
      expect((await readAll(b)).seqs).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      expect(drops).toEqual({});
      expect(b.stats().failures).toEqual({ spool_acked_invalid: 1 });
      for (const f of segs) expect(fs.existsSync(f)).toBe(true);
      await b.close();
    });

    it('an acked mark that fails its check is ignored; a good one still skips what was delivered', async () => {
      const dir = tmp();
      const a = await open(dir, 'run-1').spool;
      await a.append(Array.from({ length: 25 }, (_, i) => ev(i + 1, EventClass.Record)));
      const first = await a.next(12, 1 << 20);
      a.delivered(first!, first!.lastSeq);
      await a.close();
      const mark = fs.readFileSync(path.join(dir, 'run-1', 'acked'), 'utf8');
      expect(mark).toMatch(/^12 [0-9a-f]{8}$/);
      const b = await open(dir, 'run-2').spool;
      expect((await readAll(b)).seqs).toEqual(Array.from({ length: 13 }, (_, i) => i + 13));
      await b.close();
      fs.writeFileSync(path.join(dir, 'run-1', 'acked'), mark.replace(/^12/, '24'));
      const c = await open(dir, 'run-3').spool;
      expect((await readAll(c)).seqs).toEqual(Array.from({ length: 15 }, (_, i) => i + 11)); // 11..25: segment 2 on
      expect(c.stats().failures).toEqual({ spool_acked_invalid: 1 });
      await c.close();
    });
  });
});
