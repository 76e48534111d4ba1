// WAL checkpoints off the collector's event loop. SQLite runs a checkpoint inside whichever
// commit crosses the threshold. That copies the WAL into the database file and syncs it, and
// it took most of an insert's time in bench/console.ts. So the store turns automatic
// checkpoints off, and a worker thread with its own connection runs them on a timer.
//
// A passive checkpoint never blocks the writer, but under a steady stream of commits it never
// catches up with the end of the WAL either, and SQLite only starts the WAL over once a
// checkpoint has. So once the WAL holds more than RESTART_FRAMES, the worker pauses and asks
// the store for a RESTART checkpoint, which the store runs between two commits on its own
// connection (the only writer, and no other checkpointer runs meanwhile: nothing can starve
// it), then resumes the worker. The passive ones have copied most of the WAL by then. The
// request is a message, so it waits for the event loop to turn: a loop that never yields
// (the collector's yields between batches) lets the WAL grow meanwhile.

import { Worker } from 'node:worker_threads';

// Plain JavaScript, run with eval: the worker needs no compiled file of its own.
const CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 2000');
let paused = false;
const tick = () => {
  if (paused) return;
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    if (r && r.log > workerData.restartFrames) {
      paused = true;
      parentPort.postMessage({ restart: true });
    }
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message) });
  }
};
const timer = setInterval(tick, workerData.everyMs);
parentPort.on('message', (m) => {
  if (m === 'resume') {
    paused = false;
    return;
  }
  clearInterval(timer);
  tick();
  db.close();
  parentPort.close();
});
`;

/** 16,384 pages: 64 MiB of WAL at the default page size. */
export const RESTART_FRAMES = 16_384;

export class Checkpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(file: string, everyMs: number, restartFrames: number, onError: (message: string) => void, onRestart: () => void) {
    this.worker = new Worker(CODE, {
      eval: true,
      workerData: { file, everyMs, restartFrames, module: require.resolve('better-sqlite3') },
    });
    this.worker.on('message', (m: { error?: string; restart?: boolean }) => (m.error ? onError(m.error) : m.restart && onRestart()));
    this.worker.on('error', (err) => onError(err.message));
    this.worker.unref();
    this.exited = new Promise((r) => this.worker.once('exit', () => r()));
  }

  /** After the store's RESTART checkpoint: passive ones again. */
  resume(): void {
    this.worker.postMessage('resume');
  }

  /** A last checkpoint, then the worker ends. */
  async close(): Promise<void> {
    this.worker.postMessage('close');
    const t = setTimeout(() => void this.worker.terminate(), 5000);
    await this.exited;
    clearTimeout(t);
  }
}
