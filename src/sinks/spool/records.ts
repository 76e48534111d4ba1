// The spool's on-disk form (see spool.ts): segment names and records.
// Record: u32 LE payload length, u32 LE CRC-32 of the 16 bytes after it and the payload, u64 LE
// seq, f64 LE offer time (ms), payload (one ctrwatch.v1.Event).

import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as protobuf from 'protobufjs';
import { crc32 } from './crc32';
import { CLASS_NAMES, type EventClass, type SinkEvent } from '../types';

export const RECORD_HEADER = 24;
export const SEG_RE = /^(stats|record|detection)-(\d{10})\.seg$/;

/** Records of `evs` one after the other, in one buffer. */
export function encodeRecords(evs: readonly SinkEvent[]): Buffer {
  let size = 0;
  for (const ev of evs) size += RECORD_HEADER + ev.bytes.length;
  const b = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const ev of evs) {
    b.writeUInt32LE(ev.bytes.length, pos);
    b.writeBigUInt64LE(ev.seq, pos + 8);
    b.writeDoubleLE(ev.offeredMs, pos + 16);
    ev.bytes.copy(b, pos + RECORD_HEADER);
    const end = pos + RECORD_HEADER + ev.bytes.length;
    b.writeUInt32LE(crc32(b, pos + 8, end), pos + 4);
    pos = end;
  }
  return b;
}

/** Where the record at `pos` ends, or -1 when it is incomplete or fails its CRC. */
export function recordEnd(buf: Buffer, pos: number): number {
  if (pos + RECORD_HEADER > buf.length) return -1;
  const end = pos + RECORD_HEADER + buf.readUInt32LE(pos);
  if (end > buf.length || crc32(buf, pos + 8, end) !== buf.readUInt32LE(pos + 4)) return -1;
  return end;
}

/** Largest payload a record may claim; a header claiming more is garbage, not a record. */
const MAX_PAYLOAD = 64 << 20;

/** A cheap test before the CRC: could a record start at `pos`? (seq 0 and zeroed disk never do.) */
function plausibleHeader(buf: Buffer, pos: number): boolean {
  if (buf.readUInt32LE(pos) > MAX_PAYLOAD) return false;
  const seq = buf.readBigUInt64LE(pos + 8);
  return seq > 0n && seq < 1n << 62n;
}

/**
 * After a bad record at `from`: the offset of the next intact record in buf (its header and CRC
 * check), 'more' with the offset of a candidate that runs past buf's end (read from there to
 * know), or -1 when none starts in buf. A CRC-32 over seq, time and payload makes a false match
 * on garbage about one in 2^32 a candidate.
 */
export function resync(buf: Buffer, from: number): { at: number; more: boolean } {
  for (let p = from; p + RECORD_HEADER <= buf.length; p++) {
    if (!plausibleHeader(buf, p)) continue;
    const end = p + RECORD_HEADER + buf.readUInt32LE(p);
    if (end > buf.length) return { at: p, more: true };
    if (crc32(buf, p + 8, end) === buf.readUInt32LE(p + 4)) return { at: p, more: false };
  }
  return { at: -1, more: false };
}

export interface ParsedRecord {
  seq: bigint;
  offeredMs: number;
  start: number;
  end: number;
}

/** Complete, intact records of a whole segment, and the corrupt stretches between or after them. */
export function scanSegment(buf: Buffer): { records: ParsedRecord[]; corrupt: { start: number; end: number }[] } {
  const records: ParsedRecord[] = [];
  const corrupt: { start: number; end: number }[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const end = recordEnd(buf, pos);
    if (end > 0) {
      records.push({ seq: buf.readBigUInt64LE(pos + 8), offeredMs: buf.readDoubleLE(pos + 16), start: pos, end });
      pos = end;
      continue;
    }
    // The whole segment is in buf: a candidate running past its end is no record.
    let next = -1;
    for (let from = pos + 1; ;) {
      const r = resync(buf, from);
      if (!r.more) {
        next = r.at;
        break;
      }
      from = r.at + 1;
    }
    corrupt.push({ start: pos, end: next < 0 ? buf.length : next });
    if (next < 0) break;
    pos = next;
  }
  return { records, corrupt };
}

export function* parseRecords(buf: Buffer): Generator<ParsedRecord, void> {
  let pos = 0;
  while (pos + RECORD_HEADER <= buf.length) {
    const len = buf.readUInt32LE(pos);
    const end = pos + RECORD_HEADER + len;
    if (end > buf.length) return;
    if (crc32(buf, pos + 8, end) !== buf.readUInt32LE(pos + 4)) return;
    yield { seq: buf.readBigUInt64LE(pos + 8), offeredMs: buf.readDoubleLE(pos + 16), start: pos, end };
    pos = end;
  }
}

/** The acked file's content: the seq and a CRC-32 of its digits, so a damaged mark is known. */
export const ackMark = (seq: bigint): string => `${seq} ${ackCheck(String(seq))}`;
const ackCheck = (digits: string) => crc32(Buffer.from(digits)).toString(16).padStart(8, '0');

/**
 * The seq of an acked file, or undefined when it is not one. A mark without its check (written
 * before it had one) is believed only up to `maxSeq`, the highest seq still on disk: a larger
 * one would delete unsent segments.
 */
export function parseAckMark(raw: string, maxSeq: bigint): bigint | undefined {
  const m = /^(\d{1,20})(?: ([0-9a-f]{8}))?\s*$/.exec(raw);
  if (!m) return undefined;
  const seq = BigInt(m[1]!);
  if (m[2] !== undefined) return m[2] === ackCheck(m[1]!) ? seq : undefined;
  return seq <= maxSeq ? seq : undefined;
}

/** node (3) and boot_id (4) of an encoded ctrwatch.v1.Event, when it has both. */
export function eventOrigin(payload: Uint8Array): { node: string; bootId: string } | undefined {
  try {
    const r = protobuf.Reader.create(payload);
    let node: string | undefined;
    let bootId: string | undefined;
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag === ((3 << 3) | 2)) node = r.string();
      else if (tag === ((4 << 3) | 2)) bootId = r.string();
      else r.skipType(tag & 7);
    }
    return node && bootId ? { node, bootId } : undefined;
  } catch {
    return undefined;
  }
}

export const segName = (lane: EventClass, no: number) => `${CLASS_NAMES[lane]}-${String(no).padStart(10, '0')}.seg`;

/** length bytes of file at offset (fewer at its end). */
export async function readAt(file: string, offset: number, length: number): Promise<Buffer> {
  const fh = await fsp.open(file, fs.constants.O_RDONLY);
  try {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}
