// WAL checkpoints off the collector's event loop. SQLite runs a checkpoint inside whichever
// commit crosses the threshold. That copies the WAL into the database file and syncs it, and
// it took most of an insert's time in bench/console.ts. So the store turns automatic
// checkpoints off, and a worker thread with its own connection runs passive checkpoints on a
// timer. A passive checkpoint never blocks the writer: commits only append to the WAL.

import { Worker } from 'node:worker_threads';

// Plain JavaScript, run with eval: the worker needs no compiled file of its own.
const CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 2000');
const tick = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message) });
  }
};
const timer = setInterval(tick, workerData.everyMs);
parentPort.on('message', () => {
  clearInterval(timer);
  tick();
  db.close();
  parentPort.close();
});
`;

export class Checkpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(file: string, everyMs: number, onError: (message: string) => void) {
    this.worker = new Worker(CODE, { eval: true, workerData: { file, everyMs, module: require.resolve('better-sqlite3') } });
    this.worker.on('message', (m: { error?: string }) => m.error && onError(m.error));
    this.worker.on('error', (err) => onError(err.message));
    this.worker.unref();
    this.exited = new Promise((r) => this.worker.once('exit', () => r()));
  }

  /** A last checkpoint, then the worker ends. */
  async close(): Promise<void> {
    this.worker.postMessage('close');
    const t = setTimeout(() => void this.worker.terminate(), 5000);
    await this.exited;
    clearTimeout(t);
  }
}
