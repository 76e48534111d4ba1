// Writes byte chunks to a file descriptor or a stream, one at a time, never blocking the event
// loop: fs.write runs on libuv's thread pool, so a full pipe stalls a worker, never the caller
// (process.stdout writes to pipes synchronously on Linux). Partial writes are finished, EAGAIN
// (a non-blocking pipe) is retried after a pause. A pipe gets pipeWriter: straight from the
// event loop while the pipe has room, the thread pool only when it is full.

import * as fs from 'node:fs';
import type { Writable } from 'node:stream';

export interface ChunkWriter {
  /** cb runs once the whole chunk is written (at once when it fit), or with the error that stopped it. */
  write(chunk: Buffer, cb: (err?: NodeJS.ErrnoException | null) => void): void;
  /** Releases what the writer opened (not fd itself). */
  close?(): void;
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

/**
 * Why a second descriptor for a pipe: a write through the thread pool is two hand-offs between
 * threads, and on a busy node each waits for a CPU (container start lines spent 1-24 ms between
 * the hand-off and the end of their write on the project's 2-core bench machine). Reopened
 * through /proc/self/fd, a pipe gets a new open file description with flags of its own, so
 * O_NONBLOCK there leaves fd itself, shared with other processes, as it was. Chunks go out from the event loop while the pipe has room; what does not
 * fit goes through fdWriter on fd, which waits for the reader off the loop. One chunk at a time,
 * so the bytes keep their order. Undefined when fd is not a pipe or cannot be reopened.
 */
export function pipeWriter(fd: number): (ChunkWriter & { close(): void }) | undefined {
  let nb: number;
  try {
    if (!fs.fstatSync(fd).isFIFO()) return undefined;
    nb = fs.openSync(`/proc/self/fd/${fd}`, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  const slow = fdWriter(fd);
  return {
    write(chunk, cb) {
      let off = 0;
      try {
        while (off < chunk.length) off += fs.writeSync(nb, chunk, off, chunk.length - off);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return cb(err as NodeJS.ErrnoException);
        return slow.write(chunk.subarray(off), cb);
      }
      cb(null);
    },
    close() {
      fs.closeSync(nb);
    },
  };
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
