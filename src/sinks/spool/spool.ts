// The on-disk spool of a network sink: every event offered is appended here first (write-through),
// the sender reads it back in sequence order, and a segment is deleted once all its events are
// acknowledged. So a collector that is away or slow costs disk, not memory, and a sensor that is
// killed loses only what had not reached write(2) yet: the page cache outlives the process.
//
// Layout: DIR/<instance id>/{meta.json, acked, <class>-<no>.seg}. One directory a sensor run
// (instance): a restarted sensor sends the spool of earlier runs under their own instance id,
// so the collector's key (node, boot, instance, seq) never collides although seq starts at 1
// again. One lane of segments a class (stats, record, detection): when the spool is full, whole
// segments of the lowest class are evicted, oldest first, detections last; an event is never
// evicted to make room for a lower class (it is dropped instead). Every loss is counted.
//
// Record: u32 LE payload length, u32 LE CRC-32 of the 16 bytes after it and the payload, u64 LE
// seq, f64 LE offer time (ms), payload (one ctrwatch.v1.Event). A torn or corrupt tail (power
// loss) is cut at the first bad record when the spool is opened.
//
// fsync: 'interval' (default) datasyncs written segments once a second, so a power loss loses
// at most the last second; 'always' datasyncs before an append returns; 'never' leaves it to the
// kernel. The acked file is written without fsync: if it is stale, events are sent again and the
// collector drops them as duplicates.

import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { Fifo } from '../class-queue';
import {
  ackMark,
  encodeRecords,
  eventOrigin,
  parseAckMark,
  parseRecords,
  readAt,
  RECORD_HEADER,
  recordEnd,
  resync,
  scanSegment,
  segName,
  SEG_RE,
} from './records';
import { CLASS_NAMES, EventClass, SinkError, type DropReason, type SinkEvent } from '../types';

const READ_CHUNK = 256 << 10;
/** Bytes of recently written records kept in memory for the sender. */
const TAIL_BYTES = 8 << 20;

/** When written segments reach the disk (see above). */
export const FSYNC_POLICIES = ['interval', 'always', 'never'] as const;
export type FsyncPolicy = (typeof FSYNC_POLICIES)[number];

export interface SpoolIdentity {
  instanceId: string;
  node: string;
  bootId: string;
}

export interface SpoolOptions {
  /** This sink's spool directory (created if missing). */
  dir: string;
  /** The current sensor run. */
  identity: SpoolIdentity;
  maxBytes: number;
  /** Segment size; maxBytes/16 within [64 KiB, 8 MiB] by default. */
  segmentBytes?: number;
  fsync: FsyncPolicy;
  fsyncIntervalMs?: number;
  logger: Logger;
  /** Every event lost by the spool, by reason and class. */
  onDrop: (reason: DropReason, cls: EventClass, n: number) => void;
}

export interface SpoolStats {
  events: number;
  bytes: number;
  runs: number;
  corruptSegments: number;
  failures: Record<string, number>;
}

export class SpoolError extends SinkError {
  override name = 'SpoolError';
}

interface Segment {
  lane: EventClass;
  no: number;
  file: string;
  /** Bytes of complete records on disk. */
  size: number;
  records: number;
  maxSeq: bigint;
  acked: number;
  inflight: number;
  evicted: boolean;
  /** Bytes and records assigned by the append under way, not yet written. */
  pendingBytes: number;
  fh?: fsp.FileHandle;
  dirty: boolean;
}

interface Cursor {
  segNo: number;
  offset: number;
  /** Records read and not yet handed out (skipped when their segment is evicted meanwhile). */
  buf: Fifo<SpoolRecord>;
  /** In a corrupt stretch already counted. */
  corrupt?: boolean;
}

/** A record of the current run just written, still in memory: the sender need not read it back. */
interface TailEntry {
  segNo: number;
  offset: number;
  end: number;
  rec: SpoolRecord;
}

interface Instance {
  id: SpoolIdentity;
  dir: string;
  createdMs: number;
  current: boolean;
  acked: bigint;
  lanes: Segment[][];
  active: (Segment | undefined)[];
  nextNo: number[];
  /** Highest seq handed to a batch since the last rewind. */
  sent: bigint;
  cursors: Cursor[];
  /** Per lane, the records written last, oldest first (current run only). */
  tails: Fifo<TailEntry>[];
  ackedDirty: boolean;
}

export interface SpoolRecord {
  seq: bigint;
  offeredMs: number;
  bytes: Buffer;
  seg: Segment;
}

export interface SpoolBatch {
  id: SpoolIdentity;
  records: SpoolRecord[];
  firstSeq: bigint;
  lastSeq: bigint;
  bytes: number;
}

export class Spool {
  private readonly log: Logger;
  private readonly instances: Instance[] = [];
  private readonly current: Instance;
  private readonly segmentBytes: number;
  private total = 0;
  private tailBytes = 0;
  /** A sender is connected: keep a tail in memory for it (an outage costs disk, not memory). */
  private live = true;
  /** Highest seq accepted into the current instance, and highest fully written. */
  private lastSeq = 0n;
  private writtenSeq = 0n;
  private timer?: NodeJS.Timeout;
  private ackTimer?: NodeJS.Timeout;
  private closed = false;
  /** Bumped by rewind(): a read under way when it happens is void. */
  private generation = 0;
  private unlinks = new Set<Promise<void>>();
  corruptSegments = 0;
  /** Damage that lost nothing (or is counted as drops too), by kind: spool_meta_rebuilt, ... */
  readonly failures: Record<string, number> = {};

  private constructor(
    private readonly o: SpoolOptions,
    current: Instance,
  ) {
    this.log = o.logger.child({ component: 'spool', dir: o.dir });
    this.current = current;
    this.segmentBytes = o.segmentBytes ?? Math.min(8 << 20, Math.max(64 << 10, Math.floor(o.maxBytes / 16)));
  }

  /** Open the spool: recover the runs left in it, then start a directory for this one. */
  static async open(o: SpoolOptions): Promise<Spool> {
    if (!(o.maxBytes > 0 && Number.isFinite(o.maxBytes)))
      throw new SpoolError(`spool size ${o.maxBytes}: a positive number of bytes expected`);
    try {
      await fsp.mkdir(o.dir, { recursive: true, mode: 0o700 });
      await fsp.access(o.dir, fs.constants.W_OK);
    } catch (err) {
      throw new SpoolError(`spool directory ${o.dir}: ${(err as Error).message}`, { cause: err });
    }
    const cur: Instance = newInstance(o.identity, path.join(o.dir, o.identity.instanceId), Date.now(), true);
    const spool = new Spool(o, cur);
    for (const name of await fsp.readdir(o.dir)) {
      if (name === o.identity.instanceId || name.startsWith('.')) continue;
      const inst = await spool.recover(path.join(o.dir, name)).catch((err: unknown) => {
        spool.fail('spool_run_unreadable');
        spool.log.error({ err, dir: name }, 'spooled run not readable: left in place, not sent');
        return undefined;
      });
      if (inst) spool.instances.push(inst);
    }
    spool.instances.sort((a, b) => a.createdMs - b.createdMs);
    await fsp.mkdir(cur.dir, { recursive: true, mode: 0o700 });
    await fsp.writeFile(path.join(cur.dir, 'meta.json'), JSON.stringify({ ...o.identity, createdMs: cur.createdMs }));
    spool.instances.push(cur);
    if (o.fsync === 'interval') {
      spool.timer = setInterval(() => void spool.sync(), o.fsyncIntervalMs ?? 1000);
      spool.timer.unref();
    }
    const pending = spool.stats();
    if (pending.events)
      spool.log.info(
        { events: pending.events, bytes: pending.bytes, runs: spool.instances.length - 1 },
        'spool holds events of earlier runs: sending them first',
      );
    return spool;
  }

  /**
   * A run left by an earlier sensor: its identity, ack mark and intact records. Damage costs
   * what it damaged and no more: a corrupt stretch of a segment is cut and the intact records
   * after it kept; a lost meta.json is rebuilt from the directory name and the records' own node
   * and boot id; an ack mark that fails its check is ignored (the run is sent again: duplicates,
   * which the collector drops, not losses).
   */
  private async recover(dir: string): Promise<Instance | undefined> {
    const st = await fsp.stat(dir);
    if (!st.isDirectory()) return undefined;
    const names = await fsp.readdir(dir);
    const segs = names
      .map((n) => SEG_RE.exec(n))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => ({ lane: CLASS_NAMES.indexOf(m[1] as never) as EventClass, no: Number(m[2]), file: path.join(dir, m[0]) }));
    segs.sort((a, b) => a.no - b.no);
    const scanned: Scanned[] = [];
    for (const s of segs) {
      const sc = await this.scan(s.file, s.lane, s.no);
      if (sc) scanned.push(sc);
    }
    if (!scanned.some((x) => x.seqs.length)) {
      await fsp.rm(dir, { recursive: true, force: true });
      return undefined;
    }
    const id = await this.runIdentity(dir, scanned);
    let maxSeq = 0n;
    for (const x of scanned) for (const q of x.seqs) if (q > maxSeq) maxSeq = q;
    const inst = newInstance(id.id, dir, id.createdMs ?? st.mtimeMs, false);
    inst.acked = await this.loadAcked(dir, maxSeq);
    inst.sent = inst.acked;
    for (const x of scanned) {
      const seg = emptySegment(x.lane, x.no, x.file);
      seg.size = x.size;
      seg.records = x.seqs.length;
      for (const q of x.seqs) {
        if (q > seg.maxSeq) seg.maxSeq = q;
        if (q <= inst.acked) seg.acked++;
      }
      inst.nextNo[x.lane] = Math.max(inst.nextNo[x.lane]!, x.no + 1);
      if (seg.records === seg.acked) {
        await fsp.rm(x.file, { force: true });
        continue;
      }
      inst.lanes[x.lane]!.push(seg);
      this.total += seg.size;
    }
    if (inst.lanes.every((l) => l.length === 0)) {
      await fsp.rm(dir, { recursive: true, force: true });
      return undefined;
    }
    for (const c of inst.cursors) c.segNo = -1;
    return inst;
  }

  /** One segment of an earlier run: its intact records, corrupt stretches cut from the file. */
  private async scan(file: string, lane: EventClass, no: number): Promise<Scanned | undefined> {
    let buf: Buffer;
    try {
      buf = await fsp.readFile(file);
    } catch (err) {
      this.fail('spool_read_error');
      this.o.onDrop('spool_corrupt', lane, 1);
      this.log.error({ err, file }, 'spool segment unreadable: skipped (counted as at least one lost event)');
      return undefined;
    }
    const { records, corrupt } = scanSegment(buf);
    let size = buf.length;
    if (corrupt.length) {
      this.corruptSegments++;
      this.o.onDrop('spool_corrupt', lane, corrupt.length);
      size = records.reduce((n, r) => n + r.end - r.start, 0);
      const tailOnly = corrupt.length === 1 && corrupt[0]!.end === buf.length;
      this.log.warn(
        {
          file,
          class: CLASS_NAMES[lane],
          intactRecords: records.length,
          corrupt: corrupt.map((c) => `${c.start}-${c.end}`),
          corruptBytes: buf.length - size,
        },
        tailOnly
          ? 'spool segment has a torn or corrupt tail: cut (counted as one lost event)'
          : 'spool segment corrupt: its corrupt stretches cut, the intact records kept (each stretch counted as at least one lost event)',
      );
      try {
        if (tailOnly) await fsp.truncate(file, size);
        else await rewriteFile(file, Buffer.concat(records.map((r) => buf.subarray(r.start, r.end))));
      } catch (err) {
        this.log.error({ err, file }, 'corrupt spool segment not repaired: its intact records are not sent');
        this.o.onDrop('spool_corrupt', lane, records.length);
        return undefined;
      }
    }
    return {
      lane,
      no,
      file,
      size,
      seqs: records.map((r) => r.seq),
      first: records[0] && buf.subarray(records[0].start + RECORD_HEADER, records[0].end),
    };
  }

  /** The run's identity from meta.json, else rebuilt from its directory's name and its records. */
  private async runIdentity(dir: string, scanned: Scanned[]): Promise<{ id: SpoolIdentity; createdMs?: number }> {
    const file = path.join(dir, 'meta.json');
    let cause: unknown;
    try {
      const meta = JSON.parse(await fsp.readFile(file, 'utf8')) as Partial<SpoolIdentity> & { createdMs?: number };
      if (typeof meta.instanceId === 'string' && typeof meta.node === 'string' && typeof meta.bootId === 'string')
        return {
          id: { instanceId: meta.instanceId, node: meta.node, bootId: meta.bootId },
          createdMs: typeof meta.createdMs === 'number' ? meta.createdMs : undefined,
        };
      cause = new SpoolError('lacks instanceId, node or bootId');
    } catch (err) {
      cause = err;
    }
    // The directory is named for the run's instance id; every event carries its node and boot id.
    let origin: { node: string; bootId: string } | undefined;
    for (const x of scanned) if ((origin = x.first && eventOrigin(x.first))) break;
    const id: SpoolIdentity = {
      instanceId: path.basename(dir),
      node: origin?.node ?? this.o.identity.node,
      bootId: origin?.bootId ?? this.o.identity.bootId,
    };
    this.fail('spool_meta_rebuilt');
    this.log.warn({ err: cause, file, rebuilt: id }, 'spooled run without a readable meta.json: identity rebuilt, its events sent');
    await rewriteFile(file, Buffer.from(JSON.stringify(id))).catch((err: unknown) =>
      this.log.error({ err, file }, 'rebuilt meta.json not saved'),
    );
    return { id };
  }

  /** The run's ack mark; 0 (send the run again) when it is missing or fails its check. */
  private async loadAcked(dir: string, maxSeq: bigint): Promise<bigint> {
    const file = path.join(dir, 'acked');
    let raw: string;
    try {
      raw = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.fail('spool_acked_invalid');
        this.log.warn({ err, file }, 'spool ack mark unreadable: the run is sent again from its start (duplicates, not losses)');
      }
      return 0n;
    }
    const seq = parseAckMark(raw, maxSeq);
    if (seq !== undefined) return seq;
    this.fail('spool_acked_invalid');
    this.log.warn(
      { file, value: raw.slice(0, 48), highestSeqOnDisk: String(maxSeq) },
      'spool ack mark invalid: ignored, the run is sent again from its start (duplicates, not losses)',
    );
    return 0n;
  }

  private fail(what: string): void {
    this.failures[what] = (this.failures[what] ?? 0) + 1;
  }

  // ---- writing ------------------------------------------------------------------------------

  /** Append events of the current run, in order. One call at a time. */
  async append(evs: readonly SinkEvent[]): Promise<void> {
    if (this.closed) {
      for (const ev of evs) this.o.onDrop('closed', ev.cls, 1);
      return;
    }
    const cur = this.current;
    const chunks = new Map<Segment, { evs: SinkEvent[]; records: number; maxSeq: bigint }>();
    let last = this.lastSeq;
    for (const ev of evs) {
      if (ev.seq <= last) {
        this.o.onDrop('bad_seq', ev.cls, 1);
        continue;
      }
      const size = RECORD_HEADER + ev.bytes.length;
      if (!this.makeRoom(size, ev.cls)) {
        this.o.onDrop('spool_full', ev.cls, 1);
        continue;
      }
      let seg = cur.active[ev.cls];
      if (!seg || (seg.size + seg.pendingBytes > 0 && seg.size + seg.pendingBytes + size > this.segmentBytes)) {
        seg = this.newSegment(cur, ev.cls);
      }
      let c = chunks.get(seg);
      if (!c) chunks.set(seg, (c = { evs: [], records: 0, maxSeq: 0n }));
      c.evs.push(ev);
      c.records++;
      c.maxSeq = ev.seq;
      seg.pendingBytes += size;
      this.total += size;
      last = ev.seq;
    }
    this.lastSeq = last;
    await Promise.all(
      [...chunks].map(async ([seg, c]) => {
        const data = encodeRecords(c.evs);
        try {
          seg.fh ??= await fsp.open(seg.file, 'a', 0o600);
          let off = 0;
          while (off < data.length) off += (await seg.fh.write(data, off)).bytesWritten;
          this.keepTail(cur, seg, seg.size, c.evs);
          seg.size += data.length;
          seg.records += c.records;
          seg.maxSeq = c.maxSeq;
          seg.dirty = true;
        } catch (err) {
          this.total -= data.length;
          this.o.onDrop('write_error', seg.lane, c.records);
          this.log.error({ err, file: seg.file, events: c.records }, 'spool write failed: events lost');
          // Whatever part reached the file lies past seg.size: never read, cut on recovery.
          if (cur.active[seg.lane] === seg) cur.active[seg.lane] = undefined;
        } finally {
          seg.pendingBytes -= data.length;
          if (cur.active[seg.lane] !== seg || seg.evicted) await this.closeSegment(seg);
        }
      }),
    );
    this.writtenSeq = last;
    if (this.o.fsync === 'always') await this.sync();
  }

  /** Remember records just written at `start` in `seg`, within the tail's byte budget. */
  private keepTail(inst: Instance, seg: Segment, start: number, evs: SinkEvent[]): void {
    if (!this.live) return;
    const tail = inst.tails[seg.lane]!;
    let off = start;
    for (const ev of evs) {
      const end = off + RECORD_HEADER + ev.bytes.length;
      tail.push({ segNo: seg.no, offset: off, end, rec: { seq: ev.seq, offeredMs: ev.offeredMs, bytes: ev.bytes, seg } });
      this.tailBytes += ev.bytes.length;
      off = end;
    }
    while (this.tailBytes > TAIL_BYTES) {
      let oldest = -1;
      for (let c = 0; c < 3; c++) {
        const h = inst.tails[c]!.peek();
        if (h && (oldest < 0 || h.rec.seq < inst.tails[oldest]!.peek()!.rec.seq)) oldest = c;
      }
      this.tailBytes -= inst.tails[oldest]!.shift()!.rec.bytes.length;
    }
  }

  private newSegment(inst: Instance, lane: EventClass): Segment {
    const old = inst.active[lane];
    const no = inst.nextNo[lane]!++;
    const seg = emptySegment(lane, no, path.join(inst.dir, segName(lane, no)));
    inst.lanes[lane]!.push(seg);
    inst.active[lane] = seg;
    if (old && old.pendingBytes === 0) void this.closeSegment(old);
    return seg;
  }

  private async closeSegment(seg: Segment): Promise<void> {
    const fh = seg.fh;
    seg.fh = undefined;
    if (!fh) return;
    try {
      if (seg.dirty && this.o.fsync !== 'never' && !seg.evicted) await fh.datasync();
      seg.dirty = false;
    } finally {
      await fh.close();
    }
  }

  /** Evict until `need` more bytes fit; false when only higher classes (or data being written) are left. */
  private makeRoom(need: number, cls: EventClass): boolean {
    while (this.total + need > this.o.maxBytes) {
      const victim = this.victim(cls);
      if (!victim) return false;
      this.evict(victim.inst, victim.seg);
    }
    return true;
  }

  private victim(cls: EventClass): { inst: Instance; seg: Segment } | undefined {
    for (let c = EventClass.Stats; c <= cls; c++) {
      for (const inst of this.instances) {
        for (const seg of inst.lanes[c]!) if (seg.pendingBytes === 0 && seg.size > 0) return { inst, seg };
      }
    }
    return undefined;
  }

  private evict(inst: Instance, seg: Segment): void {
    const lane = inst.lanes[seg.lane]!;
    lane.splice(lane.indexOf(seg), 1);
    if (inst.active[seg.lane] === seg) inst.active[seg.lane] = undefined;
    seg.evicted = true;
    this.total -= seg.size;
    const lost = seg.records - seg.acked - seg.inflight;
    if (lost > 0) this.o.onDrop('spool_full', seg.lane, lost);
    this.log.warn({ file: seg.file, events: lost, class: CLASS_NAMES[seg.lane] }, 'spool full: oldest segment of the lowest class evicted');
    this.remove(seg);
  }

  private remove(seg: Segment): void {
    const p = this.closeSegment(seg)
      .catch(() => undefined)
      .then(() => fsp.rm(seg.file, { force: true }))
      .catch((err: unknown) => this.log.error({ err, file: seg.file }, 'spool segment not removed'))
      .finally(() => this.unlinks.delete(p));
    this.unlinks.add(p);
  }

  /** datasync the segments written since the last call. */
  async sync(): Promise<void> {
    const dirty = this.current.active.filter((s): s is Segment => !!s && s.dirty && !!s.fh);
    for (const s of dirty) s.dirty = false;
    await Promise.all(
      dirty.map((s) => s.fh!.datasync().catch((err: unknown) => this.log.error({ err, file: s.file }, 'spool fsync failed'))),
    );
  }

  // ---- reading ------------------------------------------------------------------------------

  /**
   * The next batch to send, oldest run first, in sequence order within the run; undefined when
   * everything written has been handed out. Advances the send cursor.
   */
  async next(maxEvents: number, maxBytes: number): Promise<SpoolBatch | undefined> {
    for (const inst of [...this.instances]) {
      const b = await this.readFrom(inst, maxEvents, maxBytes);
      if (b) return b;
    }
    return undefined;
  }

  private async readFrom(inst: Instance, maxEvents: number, maxBytes: number): Promise<SpoolBatch | undefined> {
    const horizon = inst.current ? this.writtenSeq : 2n ** 64n;
    const gen = this.generation;
    const records: SpoolRecord[] = [];
    let bytes = 0;
    const done = [false, false, false];
    while (records.length < maxEvents && bytes < maxBytes) {
      for (let c = 0; c < 3; c++) {
        if (!inst.cursors[c]!.buf.length && !done[c]) done[c] = !(await this.refill(inst, c));
        // A rewind while reading: this batch is void, the next one starts from the last ack.
        if (gen !== this.generation) return undefined;
      }
      let best = -1;
      for (let c = 0; c < 3; c++) {
        const h = inst.cursors[c]!.buf.peek();
        if (h && h.seq <= horizon && (best < 0 || h.seq < inst.cursors[best]!.buf.peek()!.seq)) best = c;
      }
      if (best < 0) break;
      const rec = inst.cursors[best]!.buf.shift()!;
      if (rec.seq <= inst.sent || rec.seg.evicted) continue;
      inst.sent = rec.seq;
      records.push(rec);
      bytes += rec.bytes.length;
    }
    if (!records.length) return undefined;
    for (const r of records) r.seg.inflight++;
    return { id: inst.id, records, firstSeq: records[0]!.seq, lastSeq: records[records.length - 1]!.seq, bytes };
  }

  /** Read more records of one lane into its cursor; false when the lane has nothing more on disk. */
  private async refill(inst: Instance, lane: number): Promise<boolean> {
    const cur = inst.cursors[lane]!;
    const gen = this.generation;
    for (;;) {
      const segs = inst.lanes[lane]!;
      let seg = segs.find((s) => s.no === cur.segNo);
      if (!seg) {
        seg = segs.find((s) => s.no > cur.segNo);
        if (!seg) return false;
        cur.segNo = seg.no;
        cur.offset = 0;
      }
      if (cur.offset >= seg.size) {
        const next = segs.find((s) => s.no > seg!.no);
        if (!next) return false;
        cur.segNo = next.no;
        cur.offset = 0;
        continue;
      }
      if (this.fromTail(inst, lane, cur, seg)) return true;
      const want = Math.min(seg.size - cur.offset, READ_CHUNK);
      const buf = await readAt(seg.file, cur.offset, want).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.log.error({ err, file: seg!.file }, 'spool read failed');
        return undefined;
      });
      if (gen !== this.generation) return false; // rewound meanwhile: the cursor is not ours any more
      if (!buf || seg.evicted) {
        cur.offset = seg.size; // gone: skip it
        continue;
      }
      let used = 0;
      for (let end = recordEnd(buf, 0); end > 0; end = recordEnd(buf, used)) {
        const seq = buf.readBigUInt64LE(used + 8);
        if (seq > inst.acked)
          cur.buf.push({ seq, offeredMs: buf.readDoubleLE(used + 16), bytes: buf.subarray(used + RECORD_HEADER, end), seg });
        used = end;
      }
      if (used === 0) {
        // One record larger than the chunk: read it whole. A bad one here means a corrupt file.
        const len = buf.length >= 4 ? buf.readUInt32LE(0) : 0;
        if (buf.length >= RECORD_HEADER && RECORD_HEADER + len > buf.length && cur.offset + RECORD_HEADER + len <= seg.size) {
          const whole = await readAt(seg.file, cur.offset, RECORD_HEADER + len).catch(() => undefined);
          if (gen !== this.generation) return false;
          for (const r of whole ? parseRecords(whole) : []) {
            used = r.end;
            if (r.seq > inst.acked) cur.buf.push({ seq: r.seq, offeredMs: r.offeredMs, bytes: whole!.subarray(RECORD_HEADER, r.end), seg });
          }
        }
        if (used === 0) {
          cur.offset = this.skipCorrupt(inst, seg, cur, buf);
          continue;
        }
      }
      cur.corrupt = false;
      cur.offset += used;
      if (cur.buf.length) return true;
    }
  }

  /**
   * A bad record at the cursor (the disk changed under us): where the next intact record of the
   * segment may start. A corrupt stretch is counted and logged once, as at least one lost event.
   */
  private skipCorrupt(inst: Instance, seg: Segment, cur: Cursor, buf: Buffer): number {
    if (!cur.corrupt) {
      cur.corrupt = true;
      this.corruptSegments++;
      this.o.onDrop('spool_corrupt', seg.lane, 1);
      this.log.error(
        { file: seg.file, offset: cur.offset, instanceId: inst.id.instanceId },
        'spool segment corrupt: skipping to its next intact record (counted as at least one lost event)',
      );
    }
    const r = resync(buf, 1);
    if (r.at > 0) return cur.offset + r.at;
    // No record starts in this chunk; one may start in its last bytes and run on past it.
    const atEnd = cur.offset + buf.length >= seg.size;
    return atEnd ? seg.size : cur.offset + Math.max(1, buf.length - RECORD_HEADER + 1);
  }

  /**
   * Take records at the cursor from the lane's in-memory tail instead of the disk; drops tail
   * entries the cursor has passed. False when the cursor is not at the tail (a backlog).
   */
  private fromTail(inst: Instance, lane: number, cur: Cursor, seg: Segment): boolean {
    const tail = inst.tails[lane]!;
    for (
      let h = tail.peek();
      h && (h.segNo < cur.segNo || (h.segNo === cur.segNo && h.offset < cur.offset) || h.rec.seg.evicted);
      h = tail.peek()
    ) {
      this.tailBytes -= tail.shift()!.rec.bytes.length;
    }
    let n = 0;
    for (let h = tail.peek(); n < 4096 && h && h.segNo === seg.no && h.offset === cur.offset; h = tail.peek()) {
      tail.shift();
      this.tailBytes -= h.rec.bytes.length;
      cur.offset = h.end;
      if (h.rec.seq > inst.acked) cur.buf.push(h.rec);
      n++;
    }
    return cur.buf.length > 0;
  }

  /** Whether a sender is connected. While not, nothing is kept in memory for it. */
  setLive(live: boolean): void {
    this.live = live;
    if (live) return;
    for (const t of this.current.tails) t.clear();
    this.tailBytes = 0;
  }

  /** A batch was acknowledged: everything up to its last seq is delivered. */
  delivered(b: SpoolBatch, ackedSeq: bigint): void {
    const inst = this.instances.find((i) => i.id.instanceId === b.id.instanceId);
    for (const r of b.records) {
      r.seg.inflight--;
      r.seg.acked++;
    }
    if (!inst || ackedSeq <= inst.acked) return;
    inst.acked = ackedSeq;
    inst.ackedDirty = true;
    for (const lane of inst.lanes) {
      for (const seg of [...lane]) {
        if (
          seg.maxSeq <= inst.acked &&
          seg.pendingBytes === 0 &&
          seg.records > 0 &&
          (inst.active[seg.lane] !== seg || seg.size >= this.segmentBytes / 2)
        ) {
          lane.splice(lane.indexOf(seg), 1);
          if (inst.active[seg.lane] === seg) inst.active[seg.lane] = undefined;
          this.total -= seg.size;
          seg.evicted = true; // not a loss: nothing left to send in it
          this.remove(seg);
        }
      }
    }
    if (!inst.current && inst.lanes.every((l) => l.length === 0)) {
      this.instances.splice(this.instances.indexOf(inst), 1);
      const p = fsp
        .rm(inst.dir, { recursive: true, force: true })
        .then(() => this.log.info({ instanceId: inst.id.instanceId }, 'spool of an earlier run delivered'));
      this.unlinks.add(p.finally(() => this.unlinks.delete(p)));
    }
    this.saveAckedSoon();
  }

  /** A batch sent but never acknowledged (the stream broke). Call rewind() after the last. */
  unacknowledged(b: SpoolBatch): void {
    for (const r of b.records) {
      r.seg.inflight--;
      // Its segment was evicted while in flight: now it is lost for sure.
      if (r.seg.evicted && r.seq > (this.instances.find((i) => i.id.instanceId === b.id.instanceId)?.acked ?? 0n))
        this.o.onDrop('spool_full', r.seg.lane, 1);
    }
  }

  /** Send again from the last acknowledged seq of every run (after a reconnect). */
  rewind(): void {
    this.generation++;
    for (const inst of this.instances) {
      inst.sent = inst.acked;
      for (const c of inst.cursors) {
        c.segNo = -1;
        c.offset = 0;
        c.buf.clear();
      }
    }
  }

  private saveAckedSoon(): void {
    if (this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = undefined;
      void this.saveAcked();
    }, 200);
  }

  private async saveAcked(): Promise<void> {
    for (const inst of this.instances) {
      if (!inst.ackedDirty) continue;
      inst.ackedDirty = false;
      const tmp = path.join(inst.dir, `.acked.${randomUUID()}`);
      try {
        await fsp.writeFile(tmp, ackMark(inst.acked));
        await fsp.rename(tmp, path.join(inst.dir, 'acked'));
      } catch (err) {
        await fsp.rm(tmp, { force: true });
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
          this.log.error({ err }, 'spool ack mark not saved (events will be sent again)');
      }
    }
  }

  /** Events not yet acknowledged, and bytes on disk. */
  stats(): SpoolStats {
    let events = 0;
    for (const inst of this.instances) for (const lane of inst.lanes) for (const s of lane) events += s.records - s.acked;
    return {
      events: Math.max(0, events),
      bytes: this.total,
      runs: this.instances.length,
      corruptSegments: this.corruptSegments,
      failures: { ...this.failures },
    };
  }

  /** Nothing written and unacknowledged is left. */
  get empty(): boolean {
    return this.stats().events === 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    await this.saveAcked();
    for (const inst of this.instances)
      for (const lane of inst.lanes) for (const s of lane) if (s.fh) await this.closeSegment(s).catch(() => undefined);
    await Promise.all([...this.unlinks]);
    if (this.current.lanes.every((l) => l.length === 0)) await fsp.rm(this.current.dir, { recursive: true, force: true });
  }
}

interface Scanned {
  lane: EventClass;
  no: number;
  file: string;
  size: number;
  seqs: bigint[];
  /** The payload of the first intact record. */
  first?: Buffer;
}

function emptySegment(lane: EventClass, no: number, file: string): Segment {
  return { lane, no, file, size: 0, records: 0, maxSeq: 0n, acked: 0, inflight: 0, evicted: false, pendingBytes: 0, dirty: false };
}

/** Replace a file's content at once (tmp, fsync, rename). */
async function rewriteFile(file: string, data: Buffer): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomUUID()}`);
  try {
    const fh = await fsp.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(data);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

function newInstance(id: SpoolIdentity, dir: string, createdMs: number, current: boolean): Instance {
  return {
    id,
    dir,
    createdMs,
    current,
    acked: 0n,
    sent: 0n,
    ackedDirty: false,
    lanes: [[], [], []],
    active: [undefined, undefined, undefined],
    nextNo: [1, 1, 1],
    cursors: [0, 1, 2].map(() => ({ segNo: -1, offset: 0, buf: new Fifo<SpoolRecord>() })),
    tails: [new Fifo<TailEntry>(), new Fifo<TailEntry>(), new Fifo<TailEntry>()],
  };
}
