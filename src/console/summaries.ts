// The two summaries the store keeps beside the events, updated in the insert's transaction:
// one row per (node, container) — what is known of it, merged from every event about it, and
// its lifecycle times — and one row per node's sensor for the fleet view.

import type Database from 'better-sqlite3';
import { eventContainer, nsToMs, type EventRow } from './row';

type Obj = Record<string, unknown>;

interface ContainerRow {
  container: string;
  created_t: number | null;
  started_t: number | null;
  exited_t: number | null;
  exit_code: number | null;
  signal: number | null;
  execs: number;
  detections: number;
  first_t: number;
  last_t: number;
}

interface SensorRow {
  instance: string;
  stats_t: number | null;
  events_emitted: number | null;
}

/** Later facts win, but a field a later event leaves empty keeps what was known. */
function merge(old: Obj, next: Obj): Obj {
  const out: Obj = { ...old };
  for (const [k, v] of Object.entries(next)) {
    if (v === undefined || v === null || v === '' || (Array.isArray(v) && !v.length)) continue;
    out[k] = v;
  }
  return out;
}

/** Events a sensor's remote sinks hold in their spools, from its stats counters. */
function spooled(counters: unknown): number | null {
  if (!counters || typeof counters !== 'object') return null;
  let n = 0;
  let any = false;
  for (const [k, v] of Object.entries(counters as Obj))
    if (k.endsWith('.spooled_events')) {
      n += Number(v);
      any = true;
    }
  return any ? n : 0;
}

/** Containers whose merged metadata is kept in memory, least recently seen forgotten first. */
const CACHE = 20_000;

export class SummaryWriter {
  private readonly cache = new Map<string, { row: ContainerRow; merged: Obj }>();
  private readonly getContainer: Database.Statement;
  private readonly touchContainer: Database.Statement;
  private readonly putContainer: Database.Statement;
  private readonly getSensor: Database.Statement;
  private readonly seen: Database.Statement;
  private readonly ready: Database.Statement;
  private readonly stats: Database.Statement;
  private readonly silent: Database.Statement;

  constructor(db: Database.Database) {
    this.getContainer = db.prepare(`SELECT * FROM containers WHERE node = ? AND id = ?`);
    this.putContainer = db.prepare(
      `INSERT OR REPLACE INTO containers (node, id, runtime, image, name, privileged, created_t, started_t, exited_t, exit_code, signal,
         execs, detections, first_t, last_t, container)
       VALUES (@node, @id, @runtime, @image, @name, @privileged, @created_t, @started_t, @exited_t, @exit_code, @signal,
         @execs, @detections, @first_t, @last_t, @container)`,
    );
    this.touchContainer = db.prepare(
      `UPDATE containers SET created_t = @created_t, started_t = @started_t, exited_t = @exited_t, exit_code = @exit_code,
         signal = @signal, execs = @execs, detections = @detections, first_t = @first_t, last_t = @last_t WHERE node = @node AND id = @id`,
    );
    this.getSensor = db.prepare(`SELECT instance, stats_t, events_emitted FROM sensors WHERE node = ?`);
    this.seen = db.prepare(
      `INSERT INTO sensors (node, boot, instance, last_seen_ms) VALUES (?, ?, ?, ?)
       ON CONFLICT (node) DO UPDATE SET last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)`,
    );
    this.ready = db.prepare(
      `UPDATE sensors SET boot = ?, instance = ?, version = ?, kernel = ?, silent_since_ms = NULL,
         stats_t = NULL, prev_stats_t = NULL, events_emitted = NULL, prev_events_emitted = NULL WHERE node = ?`,
    );
    this.stats = db.prepare(
      `UPDATE sensors SET boot = @boot, instance = @instance, prev_stats_t = @prev_stats_t, prev_events_emitted = @prev_events_emitted,
         stats_t = @stats_t, events_emitted = @events_emitted, ring_drops = @ring_drops, sink_drops = @sink_drops,
         spool_events = @spool_events, containers = @containers, silent_since_ms = NULL WHERE node = @node`,
    );
    this.silent = db.prepare(`UPDATE sensors SET silent_since_ms = ? WHERE node = ? AND instance = ?`);
  }

  apply(row: EventRow, ev: Obj, seenMs: number): void {
    if (row.kind === 'sensorSilent') {
      const s = ev.sensorSilent as Obj;
      this.silent.run(nsToMs(s.lastStatsUnixNano) || row.timeMs, row.node, String(s.instanceId ?? ''));
      return;
    }
    this.seen.run(row.node, row.boot, row.instance, seenMs);
    if (row.kind === 'sensorReady') {
      const r = ev.sensorReady as Obj;
      this.ready.run(row.boot, row.instance, String(r.version ?? ''), String(r.kernelRelease ?? ''), row.node);
    } else if (row.kind === 'sensorStats') this.applyStats(row, ev.sensorStats as Obj);
    else if (row.containerId) this.applyContainer(row, ev);
  }

  private applyStats(row: EventRow, s: Obj): void {
    const cur = this.getSensor.get(row.node) as SensorRow | undefined;
    const same = cur && cur.instance === row.instance && cur.stats_t !== null;
    if (same && row.timeMs <= cur.stats_t!) return; // a replay from a spool
    this.stats.run({
      node: row.node,
      boot: row.boot,
      instance: row.instance,
      prev_stats_t: same ? cur.stats_t : null,
      prev_events_emitted: same ? cur.events_emitted : null,
      stats_t: row.timeMs,
      events_emitted: Number(s.eventsEmitted ?? 0),
      ring_drops: Number(s.ringBufferDrops ?? 0),
      sink_drops: Number(s.sinkDrops ?? 0),
      spool_events: spooled(s.counters),
      containers: Number(s.containersTracked ?? 0),
    });
  }

  private applyContainer(row: EventRow, ev: Obj): void {
    const key = `${row.node}\0${row.containerId}`;
    let cached = this.cache.get(key);
    if (cached)
      this.cache.delete(key); // most recent last
    else {
      const old = this.getContainer.get(row.node, row.containerId) as ContainerRow | undefined;
      if (old) cached = { row: old, merged: JSON.parse(old.container) as Obj };
    }
    const merged = merge(cached?.merged ?? {}, eventContainer(ev) ?? {});
    const json = JSON.stringify(merged);
    const body = (ev[row.kind] ?? {}) as Obj;
    const t = row.timeMs;
    const r: ContainerRow = cached?.row ?? {
      container: '',
      created_t: null,
      started_t: null,
      exited_t: null,
      exit_code: null,
      signal: null,
      execs: 0,
      detections: 0,
      first_t: t,
      last_t: t,
    };
    if (row.kind === 'containerCreated') r.created_t ??= t;
    if (row.kind === 'containerStarted') r.started_t ??= t;
    if (row.kind === 'containerExited') {
      r.exited_t = t;
      r.exit_code = Number(body.exitCode ?? 0);
      r.signal = Number(body.signal ?? 0);
    }
    if (row.kind === 'containerExec') r.execs++;
    if (row.kind === 'detection') r.detections++;
    r.first_t = Math.min(r.first_t, t);
    r.last_t = Math.max(r.last_t, t);
    const changed = json !== r.container;
    r.container = json;
    this.cache.set(key, { row: r, merged });
    while (this.cache.size > CACHE) this.cache.delete(this.cache.keys().next().value!);
    // What is known rarely changes after the start: then only the times and counters are written.
    if (!changed && this.touchContainer.run({ ...r, node: row.node, id: row.containerId }).changes) return;
    this.putContainer.run({
      ...r,
      node: row.node,
      id: row.containerId,
      runtime: (merged.runtime as string | undefined) ?? null,
      image: (merged.image as string | undefined) ?? null,
      name: (merged.name as string | undefined) ?? null,
      privileged: merged.privileged === true ? 1 : 0,
    });
  }

  /** After a failed transaction: what the cache holds may not be in the database. */
  reset(): void {
    this.cache.clear();
  }
}
