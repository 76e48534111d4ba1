// The spool's on-disk form (see spool.ts): segment names and records.
// Record: u32 LE payload length, u32 LE CRC-32 of the 16 bytes after it and the payload, u64 LE
// seq, f64 LE offer time (ms), payload (one ctrwatch.v1.Event).

import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
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

/** Complete, intact records in buf[0..], and where they stop. */
/** Where the record at `pos` ends, or -1 when it is incomplete or fails its CRC. */
export function recordEnd(buf: Buffer, pos: number): number {
  if (pos + RECORD_HEADER > buf.length) return -1;
  const end = pos + RECORD_HEADER + buf.readUInt32LE(pos);
  if (end > buf.length || crc32(buf, pos + 8, end) !== buf.readUInt32LE(pos + 4)) return -1;
  return end;
}

export function* parseRecords(buf: Buffer): Generator<{ seq: bigint; offeredMs: number; start: number; end: number }, void> {
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
