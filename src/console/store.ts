// The console's embedded database (SQLite through better-sqlite3), filled by the collector as
// batches arrive. Order, for one batch: the collector checks it and drops what its windows
// already hold, this store inserts the new events in one transaction (WAL: durable against a
// crash of the process once it returns), then the node's JSON-lines log commits them (fsync)
// and only then is the batch acknowledged. A crash between the insert and the log commit makes
// the sensor send the batch again: the log takes it, and the store's unique (node, boot,
// instance, seq) index ignores what it already has. A store that fails to insert logs the error
// and counts it; it never holds back the acknowledgement, since the JSON lines are the record.
//
// better-sqlite3 is synchronous: an insert of a batch blocks the event loop for its duration
// (bench/console.ts measures it), and retention deletes in bounded chunks for the same reason.
// Checkpoints, the slow part of a commit, run in a worker thread (checkpointer.ts).

import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { SCHEMA, SCHEMA_VERSION } from './schema';
import { toRow, type EventRow } from './row';
import { SummaryWriter } from './summaries';
import { Checkpointer, RESTART_FRAMES } from './checkpointer';

export interface StoreOptions {
  /** Database file (created if absent), or ':memory:'. */
  file: string;
  logger: Logger;
  /** Events older than this (by their own time) are deleted. Default 7 days. */
  maxAgeMs?: number;
  /** The database's pages in use are kept under this many bytes (oldest events go first). Default 1 GiB. */
  maxBytes?: number;
  /** How often retention runs; 0: never by itself (tests call retain()). Default 60 s. */
  retainEveryMs?: number;
  /** WAL pages past which a checkpoint starts the WAL over (checkpointer.ts). Default 16,384. */
  walMaxFrames?: number;
  /** Wall clock in ms (tests). */
  now?: () => number;
}

export interface BatchHeader {
  node: string;
  bootId: string;
  instanceId: string;
}

export interface StoredEvent extends EventRow {
  id: number;
}

export interface StoreStats {
  inserted: number;
  ignored: number;
  failures: number;
  retainedDeleted: number;
  /** WAL restarts the checkpointer asked for (checkpointer.ts). */
  walRestarts: number;
}

export class StoreError extends Error {
  override name = 'StoreError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const DELETE_CHUNK = 5000;

export class EventStore {
  readonly db: Database.Database;
  private readonly log: Logger;
  private readonly insertEvent: Database.Statement;
  private readonly insertTechnique: Database.Statement;
  private readonly summaries: SummaryWriter;
  private readonly listeners = new Set<(rows: StoredEvent[]) => void>();
  private readonly timer?: NodeJS.Timeout;
  private retaining = false;
  private readonly checkpointer?: Checkpointer;
  readonly now: () => number;
  readonly counters: StoreStats = { inserted: 0, ignored: 0, failures: 0, retainedDeleted: 0, walRestarts: 0 };

  constructor(private readonly o: StoreOptions) {
    this.log = o.logger.child({ component: 'console-store' });
    this.now = o.now ?? Date.now;
    try {
      this.db = new Database(o.file);
      // Must precede the first table: lets retention hand freed pages back to the file system.
      this.db.pragma('auto_vacuum = INCREMENTAL');
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      // A larger page cache keeps the hot index pages (one per container id) in memory.
      this.db.pragma('cache_size = -65536');
      this.db.exec(SCHEMA);
    } catch (err) {
      throw new StoreError(`console database ${o.file}: ${(err as Error).message}`, { cause: err });
    }
    const v = this.db.prepare(`SELECT value FROM meta WHERE key = 'schema'`).get() as { value: string } | undefined;
    if (v && Number(v.value) !== SCHEMA_VERSION)
      throw new StoreError(`console database ${o.file} has schema ${v.value}, this collector writes ${SCHEMA_VERSION}: move it away`);
    this.db.prepare(`INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)`).run(String(SCHEMA_VERSION));
    this.insertEvent = this.db.prepare(
      `INSERT OR IGNORE INTO events (node, boot, instance, seq, t, kind, container_id, image, runtime, rule, severity, text, json)
       VALUES (@node, @boot, @instance, @seq, @timeMs, @kind, @containerId, @image, @runtime, @rule, @severity, @text, @json)`,
    );
    this.insertTechnique = this.db.prepare(`INSERT OR IGNORE INTO techniques (event_id, technique, node, t) VALUES (?, ?, ?, ?)`);
    this.summaries = new SummaryWriter(this.db);
    if (o.file !== ':memory:') {
      this.db.pragma('wal_autocheckpoint = 0');
      // The WAL file is cut back to this size when it starts over (it would stay at its largest).
      const frames = o.walMaxFrames ?? RESTART_FRAMES;
      this.db.pragma(`journal_size_limit = ${frames * 4096}`);
      this.checkpointer = new Checkpointer(
        o.file,
        1000,
        frames,
        (message) => this.log.warn({ message }, 'console database checkpoint failed'),
        () =>
          void this.checkpoint('RESTART').then((ok) => {
            if (ok) this.counters.walRestarts++;
            this.checkpointer?.resume();
          }),
      );
    }
    const every = o.retainEveryMs ?? 60_000;
    if (every > 0) this.timer = setInterval(() => void this.retain(), every).unref();
  }

  /** Live feed: called after each committed insert with the rows stored (not those ignored). */
  subscribe(fn: (rows: StoredEvent[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Store a batch's new events (objects in the canonical JSON form). Synchronous: returns once
   * the transaction is committed. Never throws: a failure is logged and counted.
   */
  ingest(h: BatchHeader, events: Record<string, unknown>[]): void {
    if (!events.length) return;
    let stored: StoredEvent[];
    try {
      stored = this.insertAll(h, events);
    } catch (err) {
      this.summaries.reset();
      this.counters.failures++;
      this.log.error({ err, node: h.node, events: events.length }, 'events not stored in the console database');
      return;
    }
    for (const fn of this.listeners) {
      try {
        fn(stored);
      } catch (err) {
        this.log.warn({ err }, 'live feed listener failed');
      }
    }
  }

  private readonly insertAll = (h: BatchHeader, events: Record<string, unknown>[]): StoredEvent[] =>
    this.db.transaction(() => {
      const out: StoredEvent[] = [];
      const seenMs = this.now();
      for (const ev of events) {
        const row = toRow(ev, h);
        const r = this.insertEvent.run(row);
        if (!r.changes) {
          this.counters.ignored++;
          continue;
        }
        const id = Number(r.lastInsertRowid);
        for (const t of row.techniques) this.insertTechnique.run(id, t, row.node, row.timeMs);
        this.summaries.apply(row, ev, seenMs);
        this.counters.inserted++;
        out.push({ ...row, id });
      }
      return out;
    })();

  /** Bytes of the pages holding data (the file may be larger until the free pages are vacuumed). */
  usedBytes(): number {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    const size = this.db.pragma('page_size', { simple: true }) as number;
    return (pages - free) * size;
  }

  /** Delete by age, then by size, in chunks that yield to the event loop; then free the pages. */
  async retain(): Promise<number> {
    if (this.retaining) return 0;
    this.retaining = true;
    let deleted = 0;
    const yieldLoop = () => new Promise((r) => setImmediate(r));
    try {
      const cutoff = this.now() - (this.o.maxAgeMs ?? 7 * 86_400_000);
      const byAge = this.db.prepare(`DELETE FROM events WHERE id IN (SELECT id FROM events WHERE t < ? LIMIT ${DELETE_CHUNK})`);
      for (;;) {
        const n = this.db.transaction(() => {
          this.db.prepare(`DELETE FROM techniques WHERE t < ?`).run(cutoff);
          return byAge.run(cutoff).changes;
        })();
        deleted += n;
        if (n < DELETE_CHUNK) break;
        await yieldLoop();
      }
      this.db.prepare(`DELETE FROM containers WHERE last_t < ?`).run(cutoff);
      const max = this.o.maxBytes ?? 2 ** 30;
      while (this.usedBytes() > max) {
        const n = this.deleteOldest();
        deleted += n;
        if (!n) break;
        await yieldLoop();
      }
      if (deleted) {
        this.db.prepare(`DELETE FROM containers WHERE last_t < coalesce((SELECT min(t) FROM events), 0)`).run();
        this.db.pragma('incremental_vacuum');
        await this.checkpoint('TRUNCATE');
        this.log.info({ deleted, usedBytes: this.usedBytes() }, 'console retention');
      }
      this.counters.retainedDeleted += deleted;
      return deleted;
    } catch (err) {
      this.log.error({ err }, 'console retention failed');
      return deleted;
    } finally {
      this.retaining = false;
    }
  }

  /**
   * A blocking checkpoint on the writer's own connection. The worker's passive one may be running
   * (one checkpointer at a time): then it is tried again shortly, a few times.
   */
  async checkpoint(mode: 'RESTART' | 'TRUNCATE'): Promise<boolean> {
    for (let i = 0; i < 20 && this.db.open; i++) {
      try {
        const [r] = this.db.pragma(`wal_checkpoint(${mode})`) as { busy: number }[];
        if (!r?.busy) return true;
      } catch (err) {
        this.log.warn({ err, mode }, 'console database checkpoint failed');
        return false;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  /** The oldest events by arrival: a twentieth of them, at least 100. */
  private deleteOldest(): number {
    const bounds = this.db.prepare(`SELECT min(id) AS lo, max(id) AS hi FROM events`).get() as { lo: number | null; hi: number | null };
    if (bounds.lo === null || bounds.hi === null) return 0;
    const upTo = bounds.lo + Math.max(100, Math.ceil((bounds.hi - bounds.lo + 1) / 20));
    return this.db.transaction(() => {
      this.db.prepare(`DELETE FROM techniques WHERE event_id < ?`).run(upTo);
      return this.db.prepare(`DELETE FROM events WHERE id < ?`).run(upTo).changes;
    })();
  }

  /** Stops retention and the checkpoints; the last connection to close folds the WAL in. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.listeners.clear();
    await this.checkpointer?.close();
    if (this.db.open) this.db.close();
  }
}
