// The console's JSON query API over the store (docs/console-api.md): each function takes the
// request's path parts and query parameters, checks them (QueryError → 400) and answers a
// plain object. Read-only: nothing here writes.

import type Database from 'better-sqlite3';
import { eventFilter, FILTER_PARAMS, filterSql, int, params, QueryError } from './filters';
import { SEVERITIES, TECHNIQUE_NAMES, TECHNIQUES } from './row';
import type { EventStore } from './store';

type Obj = Record<string, unknown>;

export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

interface Raw {
  id: number;
  json: string;
}

const parse = (r: Raw): Obj => ({ id: r.id, ...(JSON.parse(r.json) as Obj) });

/** GET /api/events: newest first; `before` pages back. */
export function listEvents(db: Database.Database, sp: URLSearchParams): Obj {
  const p = params(sp, [...FILTER_PARAMS, 'before', 'limit']);
  const f = eventFilter(p);
  const before = int(p, 'before', 1, Number.MAX_SAFE_INTEGER);
  const limit = int(p, 'limit', 1, 500, 100)!;
  const { where, args } = filterSql(f);
  if (before !== undefined) {
    where.push('e.id < ?');
    args.push(before);
  }
  const sql = `SELECT e.id, e.json FROM events e ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY e.id DESC LIMIT ?`;
  const rows = db.prepare(sql).all(...args, limit) as Raw[];
  return { events: rows.map(parse), next: rows.length === limit ? rows[rows.length - 1].id : null };
}

/** GET /api/events/ID: one event, and the container it is about as the store knows it now. */
export function getEvent(db: Database.Database, idText: string, sp: URLSearchParams): Obj {
  params(sp, []);
  if (!/^\d{1,15}$/.test(idText)) throw new QueryError(`event id '${idText.slice(0, 40)}' is not a whole number`);
  const r = db.prepare(`SELECT id, node, container_id, json FROM events WHERE id = ?`).get(Number(idText)) as
    (Raw & { node: string; container_id: string | null }) | undefined;
  if (!r) throw new NotFoundError(`no event ${idText} (retention may have removed it)`);
  const c = r.container_id ? containerRow(db, r.node, r.container_id) : undefined;
  return { event: parse(r), container: c ?? null };
}

interface ContainerDbRow {
  node: string;
  id: string;
  container: string;
  [k: string]: unknown;
}

function containerOut(r: ContainerDbRow): Obj {
  const { container, ...rest } = r;
  return { ...rest, privileged: rest.privileged === 1, container: JSON.parse(container) as Obj };
}

function containerRow(db: Database.Database, node: string, id: string): Obj | undefined {
  const r = db.prepare(`SELECT * FROM containers WHERE node = ? AND id = ?`).get(node, id) as ContainerDbRow | undefined;
  return r && containerOut(r);
}

/** GET /api/containers: most recently active first. */
export function listContainers(db: Database.Database, sp: URLSearchParams): Obj {
  const p = params(sp, ['node', 'image', 'runtime', 'q', 'running', 'limit', 'offset']);
  const f = eventFilter(new Map([...p].filter(([k]) => ['node', 'image', 'runtime', 'q'].includes(k))));
  const limit = int(p, 'limit', 1, 1000, 200)!;
  const offset = int(p, 'offset', 0, 1_000_000, 0)!;
  const running = p.get('running');
  if (running !== undefined && running !== 'true' && running !== 'false')
    throw new QueryError(`running: '${running}' is not true or false`);
  const where: string[] = [];
  const args: unknown[] = [];
  for (const [col, v] of [
    ['node', f.node],
    ['image', f.image],
    ['runtime', f.runtime],
  ] as const)
    if (v !== undefined) {
      where.push(`${col} = ?`);
      args.push(v);
    }
  if (f.q !== undefined) {
    where.push(`(id LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\' OR container LIKE ? ESCAPE '\\')`);
    const like = `%${f.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    args.push(like, like, like);
  }
  if (running !== undefined) where.push(running === 'true' ? 'exited_t IS NULL' : 'exited_t IS NOT NULL');
  const sql = `SELECT * FROM containers ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY last_t DESC LIMIT ? OFFSET ?`;
  const rows = db.prepare(sql).all(...args, limit, offset) as ContainerDbRow[];
  return { containers: rows.map(containerOut), offset, limit };
}

/** GET /api/containers/NODE/ID: what is known, its lifecycle and exec events in order, its detections. */
export function getContainer(db: Database.Database, node: string, id: string, sp: URLSearchParams): Obj {
  params(sp, []);
  eventFilter(new Map([...(node ? [['node', node]] : []), ...(id ? [['container', id]] : [])] as [string, string][]));
  const c = containerRow(db, node, id);
  if (!c) throw new NotFoundError(`no container ${id} on node ${node}`);
  const timeline = (
    db
      .prepare(
        `SELECT id, json FROM events WHERE container_id = ? AND node = ?
         AND kind IN ('containerCreated', 'containerStarted', 'containerExec', 'containerExited') ORDER BY id LIMIT 1000`,
      )
      .all(id, node) as Raw[]
  ).map(parse);
  const detections = (
    db
      .prepare(`SELECT id, json FROM events WHERE container_id = ? AND node = ? AND kind = 'detection' ORDER BY id LIMIT 500`)
      .all(id, node) as Raw[]
  ).map(parse);
  return { container: c, timeline, detections };
}

const WINDOWS: Record<string, number> = { '15m': 9e5, '1h': 3.6e6, '6h': 2.16e7, '24h': 8.64e7, '7d': 6.048e8, '30d': 2.592e9 };

/** GET /api/attack: detections per node and DS0032 technique in a time window. */
export function attackMatrix(db: Database.Database, sp: URLSearchParams, now: number): Obj {
  const p = params(sp, ['window', 'node']);
  const window = p.get('window') ?? '24h';
  if (window !== 'all' && !(window in WINDOWS))
    throw new QueryError(`window: '${window.slice(0, 20)}' is not one of ${[...Object.keys(WINDOWS), 'all'].join(', ')}`);
  const node = eventFilter(new Map(p.has('node') ? [['node', p.get('node')!]] : [])).node;
  const since = window === 'all' ? 0 : now - WINDOWS[window];
  const rows = db
    .prepare(
      `SELECT node, technique, count(*) AS n FROM techniques WHERE t >= ? ${node ? 'AND node = ?' : ''} GROUP BY node, technique ORDER BY node`,
    )
    .all(...(node ? [since, node] : [since])) as { node: string; technique: string; n: number }[];
  const counts: Record<string, Record<string, number>> = {};
  for (const r of rows) (counts[r.node] ??= {})[r.technique] = r.n;
  return {
    window,
    since: window === 'all' ? null : since,
    until: now,
    techniques: TECHNIQUES.map((id) => ({ id, name: TECHNIQUE_NAMES[id] })),
    nodes: Object.keys(counts),
    counts,
  };
}

interface SensorDbRow {
  node: string;
  boot: string;
  instance: string;
  version: string | null;
  kernel: string | null;
  last_seen_ms: number;
  stats_t: number | null;
  prev_stats_t: number | null;
  events_emitted: number | null;
  prev_events_emitted: number | null;
  ring_drops: number | null;
  sink_drops: number | null;
  spool_events: number | null;
  containers: number | null;
  silent_since_ms: number | null;
}

/** GET /api/sensors: one row per node's sensor; silent ones first. */
export function sensors(db: Database.Database, sp: URLSearchParams, now: number): Obj {
  params(sp, []);
  const rows = db.prepare(`SELECT * FROM sensors ORDER BY silent_since_ms IS NULL, node`).all() as SensorDbRow[];
  return {
    now,
    sensors: rows.map((r) => {
      const dt = r.stats_t !== null && r.prev_stats_t !== null ? (r.stats_t - r.prev_stats_t) / 1000 : 0;
      const rate =
        dt > 0 && r.events_emitted !== null && r.prev_events_emitted !== null ? (r.events_emitted - r.prev_events_emitted) / dt : null;
      return {
        node: r.node,
        bootId: r.boot,
        instanceId: r.instance,
        version: r.version,
        kernel: r.kernel,
        lastSeenMs: r.last_seen_ms,
        lastStatsMs: r.stats_t,
        eventsPerSecond: rate === null ? null : Math.round(rate * 100) / 100,
        eventsEmitted: r.events_emitted,
        kernelDrops: r.ring_drops,
        sinkDrops: r.sink_drops,
        spoolEvents: r.spool_events,
        containersTracked: r.containers,
        silent: r.silent_since_ms !== null,
        silentSinceMs: r.silent_since_ms,
      };
    }),
  };
}

/** GET /api/meta: what the page's filters offer. */
export function meta(store: EventStore, sp: URLSearchParams): Obj {
  params(sp, []);
  const nodes = (store.db.prepare(`SELECT node FROM sensors ORDER BY node`).all() as { node: string }[]).map((r) => r.node);
  return { nodes, severities: SEVERITIES.slice(1), techniques: TECHNIQUES, stats: store.counters };
}
