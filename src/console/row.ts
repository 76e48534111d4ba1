// One event (the proto3 canonical JSON the collector writes) → the indexed columns the console
// stores beside it. Pure: the store and the live feed's filters both read these columns.
// Unknown fields (newer sensors, site-local additions) are kept in the JSON and ignored here.

export const SEVERITIES = ['SEVERITY_UNSPECIFIED', 'INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export const KINDS = [
  'sensorReady',
  'containerCreated',
  'containerStarted',
  'containerExited',
  'containerExec',
  'detection',
  'sensorStats',
  'sensorSilent',
] as const;
export type Kind = (typeof KINDS)[number];

/** The six DS0032 (Container) techniques the sensor reports, in the matrix's order. */
export const TECHNIQUES = ['T1610', 'T1611', 'T1613', 'T1053.007', 'T1543.005', 'T1204.003'] as const;

export const TECHNIQUE_NAMES: Record<(typeof TECHNIQUES)[number], string> = {
  T1610: 'Deploy Container',
  T1611: 'Escape to Host',
  T1613: 'Container and Resource Discovery',
  'T1053.007': 'Scheduled Task/Job: Container Orchestration Job',
  'T1543.005': 'Create or Modify System Process: Container Service',
  'T1204.003': 'User Execution: Malicious Image',
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- events are proto3 JSON of any shape; each read is checked
type Obj = Record<string, any>;

export interface EventRow {
  node: string;
  boot: string;
  /** The sensor run: from the batch header (collector events: the silent sensor's). */
  instance: string;
  /** null for events the collector wrote itself (sensorSilent). */
  seq: number | null;
  /** Wall time of the fact, ms since the Unix epoch. */
  timeMs: number;
  kind: Kind | 'other';
  containerId: string | null;
  image: string | null;
  runtime: string | null;
  rule: string | null;
  /** 0..5, SEVERITIES' index; null when not a detection. */
  severity: number | null;
  techniques: string[];
  /** What text search looks in: message, rule, exe, argv, container name and image, labels. */
  text: string;
  json: string;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

export function eventKind(ev: Obj): Kind | 'other' {
  for (const k of KINDS) if (ev[k] !== undefined && ev[k] !== null) return k;
  return 'other';
}

/** The container an event is about, if any. */
export function eventContainer(ev: Obj): Obj | undefined {
  const k = eventKind(ev);
  if (k === 'other' || k === 'sensorReady' || k === 'sensorStats' || k === 'sensorSilent') return undefined;
  const c = (ev[k] as Obj).container;
  return c && typeof c === 'object' ? (c as Obj) : undefined;
}

function processText(p: unknown): string {
  if (!p || typeof p !== 'object') return '';
  const q = p as Obj;
  return [q.exe, q.comm, ...(Array.isArray(q.argv) ? q.argv : [])].filter((s) => typeof s === 'string').join(' ');
}

/** Nanosecond decimal string (or number) → ms; 0 when absent or not a number. */
export function nsToMs(v: unknown): number {
  if (typeof v === 'number') return Math.floor(v / 1e6);
  if (typeof v !== 'string' || !/^\d{1,20}$/.test(v)) return 0;
  return Number(BigInt(v) / 1_000_000n);
}

export function toRow(ev: Obj, header: { node: string; bootId: string; instanceId: string }, json = JSON.stringify(ev)): EventRow {
  const kind = eventKind(ev);
  const c = eventContainer(ev);
  const body = kind === 'other' ? undefined : (ev[kind] as Obj);
  const det = kind === 'detection' ? body : undefined;
  const sev = det ? SEVERITIES.indexOf(det.severity as (typeof SEVERITIES)[number]) : -1;
  const labels = c?.labels && typeof c.labels === 'object' ? Object.entries(c.labels as Obj).map(([k, v]) => `${k}=${String(v)}`) : [];
  const text = [
    det?.message,
    det?.ruleId,
    c?.id,
    c?.name,
    c?.image,
    ...labels,
    processText(body?.process),
    ...(Array.isArray(det?.chain) ? (det.chain as unknown[]).map(processText) : []),
  ]
    .filter((s) => typeof s === 'string' && s !== '')
    .join('\n');
  const seq = typeof ev.seq === 'string' && /^\d{1,19}$/.test(ev.seq) ? Number(ev.seq) : null;
  return {
    node: header.node,
    boot: header.bootId,
    instance: header.instanceId,
    seq,
    timeMs: nsToMs(ev.timeUnixNano),
    kind,
    containerId: str(c?.id),
    image: str(c?.image),
    runtime: str(c?.runtime),
    rule: str(det?.ruleId),
    severity: det ? Math.max(0, sev) : null,
    techniques: Array.isArray(det?.techniques) ? (det.techniques as unknown[]).filter((t): t is string => typeof t === 'string') : [],
    text,
    json,
  };
}
