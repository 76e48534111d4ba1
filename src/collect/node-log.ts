// One node's output in the collector: JSON lines (schema.toJsonLine's form) in
// DIR/<node>/events-NNNNNN.jsonl, rotated by size, and beside them state.json, the
// de-duplication windows of that node's sensor runs and how far the current file is committed.
//
// Group commit: appends queue while a commit runs; each commit writes what is queued, fsyncs
// the file, then writes state.json (tmp, fsync, rename, fsync of the directory), and only then
// resolves the appends, whose batches are acknowledged. The windows saved are the ones that
// match exactly the lines written, so after a crash the collector cuts the file back to the
// committed size and knows precisely what it has: nothing acknowledged is lost, nothing
// written twice.

import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { SeqWindow, type SeqWindowState } from './seq-window';

export interface NodeLogOptions {
  dir: string;
  maxFileBytes: number;
  logger: Logger;
  /** Sensor runs remembered a node, least recently seen forgotten first. */
  maxRuns?: number;
}

interface State {
  file: number;
  size: number;
  windows: Record<string, SeqWindowState>;
}

export class NodeLogError extends Error {
  override name = 'NodeLogError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const fileName = (n: number) => `events-${String(n).padStart(6, '0')}.jsonl`;
const FILE_RE = /^events-(\d{6,})\.jsonl$/;

export class NodeLog {
  private readonly log: Logger;
  private readonly windows = new Map<string, SeqWindow>();
  private fh?: fsp.FileHandle;
  private file = 1;
  private size = 0;
  private committed: State;
  private pending: (string | Buffer)[] = [];
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private committing = false;
  private closed = false;
  linesWritten = 0;
  commits = 0;

  private constructor(
    private readonly o: NodeLogOptions,
    state: State,
  ) {
    this.log = o.logger.child({ component: 'node-log', dir: o.dir });
    this.committed = state;
    this.file = state.file;
    this.size = state.size;
    for (const [k, w] of Object.entries(state.windows)) this.windows.set(k, new SeqWindow(w));
  }

  /** Open a node's directory, cutting off whatever was written after the last commit. */
  static async open(o: NodeLogOptions): Promise<NodeLog> {
    await fsp.mkdir(o.dir, { recursive: true, mode: 0o750 });
    const names = await fsp.readdir(o.dir);
    const numbers = names
      .map((n) => FILE_RE.exec(n))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => Number(m[1]));
    let state: State | undefined;
    try {
      state = JSON.parse(await fsp.readFile(path.join(o.dir, 'state.json'), 'utf8')) as State;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new NodeLogError(`${o.dir}/state.json unreadable`, { cause: err });
    }
    const log = o.logger.child({ component: 'node-log', dir: o.dir });
    if (!state) {
      const next = numbers.length ? Math.max(...numbers) + 1 : 1;
      if (numbers.length) log.warn({ file: fileName(next) }, 'no state.json: earlier output kept as is, duplicates of it not recognised');
      state = { file: next, size: 0, windows: {} };
    } else {
      // Uncommitted tail: never acknowledged, the sensors send it again.
      const cur = path.join(o.dir, fileName(state.file));
      const st = await fsp.stat(cur).catch(() => undefined);
      if (st && st.size > state.size) {
        log.warn({ file: fileName(state.file), committed: state.size, found: st.size }, 'cutting uncommitted lines');
        await fsp.truncate(cur, state.size);
      }
      for (const n of numbers) if (n > state.file) await fsp.rm(path.join(o.dir, fileName(n)), { force: true });
    }
    return new NodeLog(o, state);
  }

  /** The window of a sensor run (node dir + "boot/instance" key). */
  window(key: string): SeqWindow {
    let w = this.windows.get(key);
    if (w) {
      this.windows.delete(key); // most recent last
    } else {
      w = new SeqWindow();
      const max = this.o.maxRuns ?? 1024;
      while (this.windows.size >= max) this.windows.delete(this.windows.keys().next().value!);
    }
    this.windows.set(key, w);
    return w;
  }

  /**
   * Queue lines (each ending in a newline; may be empty): the promise resolves once they, and
   * all queued before them, are durable.
   */
  append(text: string | Buffer, lines: number): Promise<void> {
    if (this.closed) return Promise.reject(new NodeLogError('node log closed'));
    if (text.length) this.pending.push(text);
    this.linesWritten += lines;
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.committing) void this.commitLoop();
    return p;
  }

  private snapshot(): Record<string, SeqWindowState> {
    const out: Record<string, SeqWindowState> = {};
    for (const [k, w] of this.windows) out[k] = w.toJSON();
    return out;
  }

  private async commitLoop(): Promise<void> {
    this.committing = true;
    try {
      while (this.waiters.length) {
        const texts = this.pending.splice(0);
        const waiters = this.waiters.splice(0);
        const windows = this.snapshot(); // matches exactly the lines taken
        try {
          await this.commit(texts, windows);
          for (const w of waiters) w.resolve();
        } catch (err) {
          const e = new NodeLogError(`writing ${this.o.dir} failed`, { cause: err });
          this.log.error({ err }, 'commit failed: rolling back to the last commit');
          for (const w of [...waiters, ...this.waiters.splice(0)]) w.reject(e);
          this.pending = [];
          await this.rollback();
        }
      }
    } finally {
      this.committing = false;
    }
  }

  private async commit(texts: (string | Buffer)[], windows: Record<string, SeqWindowState>): Promise<void> {
    if (texts.length) {
      const data = Buffer.concat(texts.map((t) => (typeof t === 'string' ? Buffer.from(t, 'utf8') : t)));
      if (this.size > 0 && this.size + data.length > this.o.maxFileBytes) {
        await this.fh?.sync();
        await this.fh?.close();
        this.fh = undefined;
        this.file++;
        this.size = 0;
      }
      this.fh ??= await fsp.open(path.join(this.o.dir, fileName(this.file)), 'a', 0o640);
      let off = 0;
      while (off < data.length) off += (await this.fh.write(data, off)).bytesWritten;
      this.size += data.length;
      await this.fh.datasync();
    }
    const state: State = { file: this.file, size: this.size, windows };
    const tmp = path.join(this.o.dir, '.state.json.tmp');
    const fh = await fsp.open(tmp, 'w', 0o640);
    try {
      await fh.writeFile(JSON.stringify(state));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, path.join(this.o.dir, 'state.json'));
    const dfh = await fsp.open(this.o.dir, 'r');
    try {
      await dfh.sync();
    } finally {
      await dfh.close();
    }
    this.committed = state;
    this.commits++;
  }

  private async rollback(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
    this.fh = undefined;
    this.file = this.committed.file;
    this.size = this.committed.size;
    await fsp.truncate(path.join(this.o.dir, fileName(this.file)), this.size).catch(() => undefined);
    this.windows.clear();
    for (const [k, w] of Object.entries(this.committed.windows)) this.windows.set(k, new SeqWindow(w));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.waiters.length) await this.append('', 0).catch(() => undefined);
    this.closed = true;
    await this.fh?.close();
    this.fh = undefined;
  }
}
