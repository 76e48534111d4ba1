// file:PATH — length-delimited protobuf: a varint length, then that many bytes of one
// ctrwatch.v1.Event (protobufjs's encodeDelimited/decodeDelimited form, Java's
// writeDelimitedTo). Rotated by size: PATH → PATH.1 → … → PATH.<keep>, the oldest removed.
// Written with write(2) a batch, no fsync: a crash of the process loses nothing written,
// a crash of the machine may lose what the page cache held.

import * as fsp from 'node:fs/promises';
import { QueuedSink, type QueuedSinkOptions } from '../queued-sink';
import type { SinkEvent } from '../types';

export interface FileSinkOptions extends QueuedSinkOptions {
  path: string;
  /** Rotate before a write would take the file past this size. */
  maxBytes: number;
  /** Rotated files kept. */
  keep: number;
}

function varintBytes(n: number, out: Buffer, pos: number): number {
  while (n > 127) {
    out[pos++] = (n & 127) | 128;
    n >>>= 7;
  }
  out[pos++] = n;
  return pos;
}

/** Events in the length-delimited form, one buffer. */
export function delimit(events: readonly Buffer[]): Buffer {
  let size = 0;
  for (const b of events) size += b.length + 5;
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const b of events) {
    pos = varintBytes(b.length, out, pos);
    pos += b.copy(out, pos);
  }
  return out.subarray(0, pos);
}

export class FileSink extends QueuedSink {
  private fh?: fsp.FileHandle;
  private size = 0;

  constructor(private readonly fo: FileSinkOptions) {
    super(`file:${fo.path}`, fo);
  }

  private async open(): Promise<fsp.FileHandle> {
    if (!this.fh) {
      this.fh = await fsp.open(this.fo.path, 'a', 0o640);
      this.size = (await this.fh.stat()).size;
    }
    return this.fh;
  }

  private async rotate(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
    const p = this.fo.path;
    await fsp.rm(`${p}.${this.fo.keep}`, { force: true });
    for (let i = this.fo.keep - 1; i >= 1; i--) await fsp.rename(`${p}.${i}`, `${p}.${i + 1}`).catch(() => undefined);
    if (this.fo.keep > 0) await fsp.rename(p, `${p}.1`);
    else await fsp.rm(p, { force: true });
    this.log.info({ path: p, keep: this.fo.keep }, 'rotated');
  }

  protected async writeBatch(batch: SinkEvent[]): Promise<void> {
    const chunk = delimit(batch.map((e) => e.bytes));
    let fh = await this.open();
    if (this.size > 0 && this.size + chunk.length > this.fo.maxBytes) {
      await this.rotate();
      fh = await this.open();
    }
    try {
      let off = 0;
      while (off < chunk.length) off += (await fh.write(chunk, off)).bytesWritten;
      this.size += chunk.length;
    } catch (err) {
      // Reopen on the next batch (the file may have been removed or the disk freed).
      await this.fh?.close().catch(() => undefined);
      this.fh = undefined;
      throw err;
    }
  }

  protected async release(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
  }
}
