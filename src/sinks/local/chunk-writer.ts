// Writes byte chunks to a file descriptor or a stream, one at a time, off the event loop:
// fs.write runs on libuv's thread pool, so a full pipe stalls a worker, never the caller
// (process.stdout writes to pipes synchronously on Linux). Partial writes are finished, EAGAIN
// (a non-blocking pipe) is retried after a pause.

import * as fs from 'node:fs';
import type { Writable } from 'node:stream';

export interface ChunkWriter {
  /** cb runs once the whole chunk is written, or with the error that stopped it. */
  write(chunk: Buffer, cb: (err?: NodeJS.ErrnoException | null) => void): void;
}

export function fdWriter(fd: number): ChunkWriter {
  const writeAll = (chunk: Buffer, off: number, cb: (err?: NodeJS.ErrnoException | null) => void): void => {
    fs.write(fd, chunk, off, chunk.length - off, null, (err, n) => {
      if (err?.code === 'EAGAIN') return void setTimeout(() => writeAll(chunk, off, cb), 5);
      if (err) return cb(err);
      if (off + n < chunk.length) return writeAll(chunk, off + n, cb);
      cb(null);
    });
  };
  return { write: (chunk, cb) => writeAll(chunk, 0, cb) };
}

export function streamWriter(out: Writable): ChunkWriter {
  let pending: ((err?: NodeJS.ErrnoException | null) => void) | undefined;
  out.on('error', (err: NodeJS.ErrnoException) => {
    const cb = pending;
    pending = undefined;
    cb?.(err);
  });
  return {
    write(chunk, cb) {
      pending = cb;
      out.write(chunk, (err) => {
        if (pending !== cb) return;
        pending = undefined;
        cb(err as NodeJS.ErrnoException | null);
      });
    },
  };
}
