// The console API's query parameters: parsed and checked (a bad one is a QueryError, HTTP 400,
// naming the parameter and what it accepts), then turned into SQL for stored events or into a
// predicate for the live feed, so that both answer the same filter the same way.

import { KINDS, SEVERITIES, TECHNIQUES, type EventRow, type Kind } from './row';

export class QueryError extends Error {
  override name = 'QueryError';
}

export const RUNTIMES = ['RUNC', 'CRUN', 'CONTAINERD', 'DOCKER', 'PODMAN', 'CRIO', 'UNKNOWN'] as const;

export interface EventFilter {
  node?: string;
  container?: string;
  image?: string;
  runtime?: string;
  rule?: string;
  technique?: string;
  /** At least this severity (index into SEVERITIES); only detections match. */
  severity?: number;
  kind?: Kind;
  /** Substring, case-insensitive for ASCII, of the event's text (message, rule, argv, names, labels). */
  q?: string;
  /** Time window, ms since the epoch, by the event's own time. */
  since?: number;
  until?: number;
}

const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const CONTAINER_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const RULE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** One parameter each at most; a parameter not in `known` is an error. */
export function params(sp: URLSearchParams, known: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of sp) {
    if (!known.includes(k)) throw new QueryError(`unknown parameter '${k.slice(0, 40)}'; this endpoint takes: ${known.join(', ')}`);
    if (out.has(k)) throw new QueryError(`parameter '${k}' given more than once`);
    if (v !== '') out.set(k, v);
  }
  return out;
}

function matching(p: Map<string, string>, name: string, re: RegExp, what: string): string | undefined {
  const v = p.get(name);
  if (v !== undefined && !re.test(v)) throw new QueryError(`${name}: '${v.slice(0, 80)}' is not ${what}`);
  return v;
}

function oneOf<T extends string>(p: Map<string, string>, name: string, allowed: readonly T[]): T | undefined {
  const v = p.get(name);
  if (v !== undefined && !allowed.includes(v as T))
    throw new QueryError(`${name}: '${v.slice(0, 80)}' is not one of ${allowed.join(', ')}`);
  return v as T | undefined;
}

/** A time: ms since the epoch, or an ISO 8601 date. */
export function time(p: Map<string, string>, name: string): number | undefined {
  const v = p.get(name);
  if (v === undefined) return undefined;
  const ms = /^\d{1,15}$/.test(v) ? Number(v) : /^\d{4}-\d\d-\d\d/.test(v) ? Date.parse(v) : NaN;
  if (!Number.isFinite(ms)) throw new QueryError(`${name}: '${v.slice(0, 80)}' is neither ms since the epoch nor an ISO 8601 time`);
  return ms;
}

export function int(p: Map<string, string>, name: string, min: number, max: number, dflt?: number): number | undefined {
  const v = p.get(name);
  if (v === undefined) return dflt;
  if (!/^\d{1,15}$/.test(v) || Number(v) < min || Number(v) > max)
    throw new QueryError(`${name}: '${v.slice(0, 80)}' is not a whole number from ${min} to ${max}`);
  return Number(v);
}

export const FILTER_PARAMS = ['node', 'container', 'image', 'runtime', 'rule', 'technique', 'severity', 'kind', 'q', 'since', 'until'];

export function eventFilter(p: Map<string, string>): EventFilter {
  const image = p.get('image');
  if (image !== undefined && (image.length > 512 || /[\x00-\x1f]/.test(image)))
    throw new QueryError('image: at most 512 characters, no control characters');
  const q = p.get('q');
  if (q !== undefined && q.length > 200) throw new QueryError('q: at most 200 characters');
  const sev = oneOf(p, 'severity', SEVERITIES.slice(1));
  const f: EventFilter = {
    node: matching(p, 'node', NODE_RE, 'a node name'),
    container: matching(p, 'container', CONTAINER_RE, 'a container id'),
    image,
    runtime: oneOf(p, 'runtime', RUNTIMES),
    rule: matching(p, 'rule', RULE_RE, 'a rule id'),
    technique: oneOf(p, 'technique', TECHNIQUES),
    severity: sev === undefined ? undefined : SEVERITIES.indexOf(sev),
    kind: oneOf(p, 'kind', KINDS),
    q,
    since: time(p, 'since'),
    until: time(p, 'until'),
  };
  if (f.since !== undefined && f.until !== undefined && f.since > f.until) throw new QueryError('since is after until');
  return f;
}

/** The filter as a WHERE clause over `events` (alias e) and its arguments. */
export function filterSql(f: EventFilter): { where: string[]; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  const eq = (col: string, v: unknown) => {
    if (v === undefined) return;
    where.push(`${col} = ?`);
    args.push(v);
  };
  eq('e.node', f.node);
  eq('e.container_id', f.container);
  eq('e.image', f.image);
  eq('e.runtime', f.runtime);
  eq('e.rule', f.rule);
  eq('e.kind', f.kind);
  if (f.severity !== undefined) {
    where.push('e.severity >= ?');
    args.push(f.severity);
  }
  if (f.technique !== undefined) {
    where.push('e.id IN (SELECT event_id FROM techniques WHERE technique = ?)');
    args.push(f.technique);
  }
  if (f.q !== undefined) {
    where.push(`e.text LIKE ? ESCAPE '\\'`);
    args.push(`%${f.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  }
  if (f.since !== undefined) {
    where.push('e.t >= ?');
    args.push(f.since);
  }
  if (f.until !== undefined) {
    where.push('e.t < ?');
    args.push(f.until);
  }
  return { where, args };
}

/** The same filter for the live feed's new rows. */
export function filterMatches(f: EventFilter, r: EventRow): boolean {
  if (f.node !== undefined && r.node !== f.node) return false;
  if (f.container !== undefined && r.containerId !== f.container) return false;
  if (f.image !== undefined && r.image !== f.image) return false;
  if (f.runtime !== undefined && r.runtime !== f.runtime) return false;
  if (f.rule !== undefined && r.rule !== f.rule) return false;
  if (f.kind !== undefined && r.kind !== f.kind) return false;
  if (f.severity !== undefined && (r.severity === null || r.severity < f.severity)) return false;
  if (f.technique !== undefined && !r.techniques.includes(f.technique)) return false;
  if (f.q !== undefined && !asciiLower(r.text).includes(asciiLower(f.q))) return false;
  if (f.since !== undefined && r.timeMs < f.since) return false;
  if (f.until !== undefined && r.timeMs >= f.until) return false;
  return true;
}

/** SQLite's LIKE folds ASCII letters only. */
const asciiLower = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
