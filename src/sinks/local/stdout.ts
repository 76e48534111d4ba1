// stdout: one canonical JSON line an event (schema.toJsonLine's form), one write a batch.
// EPIPE (the reader went away) closes the sink for good and calls onClosed.

import type { Writable } from 'node:stream';
import { JsonOut, type EventCodec, type JsonHead } from '../../proto/codec';
import { fdWriter, pipeWriter, streamWriter, type ChunkWriter } from './chunk-writer';
import { QueuedSink, type QueuedSinkOptions } from '../queued-sink';
import type { SinkEvent } from '../types';

export interface StdoutSinkOptions extends QueuedSinkOptions {
  codec: EventCodec;
  /** A stream (tests) or a file descriptor; fd 1 by default. */
  out?: Writable | number;
  /** The reader closed the pipe: nothing more can be written. */
  onClosed?: (err: Error) => void;
}

export class StdoutSink extends QueuedSink {
  private readonly writer: ChunkWriter;
  private readonly head: JsonHead = { seq: undefined, timeUnixNano: undefined, node: '', bootId: '', kind: undefined };

  constructor(private readonly so: StdoutSinkOptions) {
    super('stdout', so);
    const out = so.out ?? 1;
    this.writer = typeof out === 'number' ? (pipeWriter(out) ?? fdWriter(out)) : streamWriter(out);
  }

  protected writeBatch(batch: SinkEvent[]): Promise<void> | void {
    // The lines written from the event bytes straight into one buffer (proto/codec-json.ts).
    let size = 0;
    for (const ev of batch) size += ev.bytes.length;
    const out = new JsonOut(Math.max(4096, size * 2));
    for (const ev of batch) {
      this.so.codec.writeJson(ev.bytes, out, this.head);
      out.byte(10);
    }
    const chunk = out.buf.subarray(0, out.pos);
    // A pipe with room takes the chunk before write() returns: then nothing to wait for.
    let now: { err?: NodeJS.ErrnoException | null } | undefined;
    let later: ((err?: NodeJS.ErrnoException | null) => void) | undefined;
    this.writer.write(chunk, (err) => (later ? later(err) : (now = { err })));
    if (now) {
      if (now.err) throw now.err;
      return;
    }
    return new Promise((resolve, reject) => (later = (err) => (err ? reject(err) : resolve())));
  }

  protected override onWriteError(err: NodeJS.ErrnoException, batch: SinkEvent[]): void {
    if (err.code !== 'EPIPE') return super.onWriteError(err, batch);
    if (!this.closedForGood) this.log.info('stdout closed by its reader (EPIPE): no more events on stdout');
    this.closedForGood = true;
    this.closed = true;
    this.drop('closed', batch);
    this.so.onClosed?.(err);
  }

  protected async release(): Promise<void> {
    this.writer.close?.();
  }
}
