/**
 * The console's database at scale: `node dist/bench/console.js` (after make build; no root).
 * Fills a fresh SQLite file through EventStore.ingest, as the collector does (batches of 500
 * synthetic events from 20 nodes and 5,000 containers: lifecycle, execs, 2% detections, stats),
 * then times the API's queries, each run CONSOLE_QUERY_REPS times: the feed's first page
 * unfiltered and by node, severity and technique, one container's events, the containers of a
 * node by image, a container's page, the ATT&CK matrix, and a text search. Writes
 * bench/out/console.json and prints a table.
 *
 * Environment: CONSOLE_EVENTS [1000000], CONSOLE_BATCH [500], CONSOLE_QUERY_REPS [20].
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { attackMatrix, getContainer, listContainers, listEvents } from '../src/console/api';
import { EventStore } from '../src/console/store';

const N = Number(process.env.CONSOLE_EVENTS ?? 1_000_000);
const BATCH = Number(process.env.CONSOLE_BATCH ?? 500);
const REPS = Number(process.env.CONSOLE_QUERY_REPS ?? 20);
const NODES = 20;
const CONTAINERS = 5000;
const RULES: [string, string, string][] = [
  ['escape.privileged-container', 'T1611', 'HIGH'],
  ['escape.kernel-control-write', 'T1611', 'CRITICAL'],
  ['discovery.runtime-cli', 'T1613', 'MEDIUM'],
  ['deploy.exec-into-container', 'T1610', 'LOW'],
  ['persistence.runtime-config-write', 'T1543.005', 'HIGH'],
];

function event(i: number, t0: number): { node: string; ev: Record<string, unknown> } {
  const c = i % CONTAINERS;
  const node = `node-${String(c % NODES).padStart(2, '0')}`;
  const container = {
    id: `${c.toString(16).padStart(12, '0')}${'ab'.repeat(26)}`,
    runtime: ['DOCKER', 'RUNC', 'CONTAINERD', 'PODMAN'][c % 4],
    name: `svc-${c}`,
    image: `registry.example/team-${c % 50}/app:${c % 7}`,
    labels: { app: `svc-${c % 300}`, tier: c % 2 ? 'web' : 'db' },
  };
  const head = { seq: String(i + 1), timeUnixNano: String(BigInt(t0 + Math.floor(i / 10)) * 1_000_000n), node, bootId: 'boot-1' };
  const proc = { pid: 1000 + (i % 30000), exe: '/bin/sh', argv: ['sh', '-c', `echo job ${i % 1000}`], uid: 0, euid: 0 };
  const r = i % 100;
  if (r === 0) return { node, ev: { ...head, sensorStats: { eventsEmitted: String(i), ringBufferDrops: '0' } } };
  if (r < 3) {
    const [ruleId, t, severity] = RULES[i % RULES.length];
    return {
      node,
      ev: {
        ...head,
        detection: { ruleId, techniques: [t], severity, message: `${ruleId} in ${container.name}`, container, chain: [proc] },
      },
    };
  }
  if (r < 5) return { node, ev: { ...head, [['containerCreated', 'containerStarted'][r - 3]]: { container, process: proc } } };
  if (r === 5) return { node, ev: { ...head, containerExited: { container, exitCode: i % 3 } } };
  return { node, ev: { ...head, containerExec: { container, process: proc } } };
}

function time(f: () => unknown): { medianMs: number; maxMs: number; rows: number } {
  const ms: number[] = [];
  let rows = 0;
  for (let i = 0; i < REPS; i++) {
    const t = process.hrtime.bigint();
    const r = f() as Record<string, unknown[]>;
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    rows = (r.events ?? r.containers ?? r.timeline ?? Object.keys(r.counts ?? {})).length;
  }
  ms.sort((a, b) => a - b);
  return { medianMs: +ms[Math.floor(ms.length / 2)].toFixed(2), maxMs: +ms[ms.length - 1].toFixed(2), rows };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cw-console-bench-'));
  const file = join(dir, 'console.sqlite');
  const t0 = Date.now() - N / 10; // ten events a ms, ending now
  const store = new EventStore({ file, logger: pino({ level: 'warn' }), retainEveryMs: 0, maxAgeMs: 365 * 86_400_000, maxBytes: 2 ** 40 });
  try {
    const batchMs: number[] = [];
    const started = Date.now();
    for (let i = 0; i < N; i += BATCH) {
      const byNode = new Map<string, Record<string, unknown>[]>();
      for (let j = i; j < Math.min(N, i + BATCH); j++) {
        const { node, ev } = event(j, t0);
        let l = byNode.get(node);
        if (!l) byNode.set(node, (l = []));
        l.push(ev);
      }
      const t = process.hrtime.bigint();
      for (const [node, evs] of byNode) store.ingest({ node, bootId: 'boot-1', instanceId: 'inst-1' }, evs);
      batchMs.push(Number(process.hrtime.bigint() - t) / 1e6);
      await new Promise((r) => setImmediate(r)); // as the collector's loop turns between batches
    }
    const fillS = (Date.now() - started) / 1000;
    batchMs.sort((a, b) => a - b);
    const db = store.db;
    const q = (o: Record<string, string>) => new URLSearchParams(o);
    const someContainer = `${(1234).toString(16).padStart(12, '0')}${'ab'.repeat(26)}`;
    const queries = {
      'feed first page (100)': time(() => listEvents(db, q({}))),
      'feed first page, node': time(() => listEvents(db, q({ node: 'node-07' }))),
      'feed first page, severity ≥ HIGH': time(() => listEvents(db, q({ severity: 'HIGH' }))),
      'feed first page, technique T1613 on a node': time(() => listEvents(db, q({ technique: 'T1613', node: 'node-03' }))),
      "one container's events": time(() => listEvents(db, q({ container: someContainer }))),
      "a node's containers by image": time(() => listContainers(db, q({ node: 'node-14', image: 'registry.example/team-34/app:6' }))),
      'container page (timeline, detections)': time(() => getContainer(db, 'node-14', someContainer, q({}))),
      'ATT&CK matrix, 24h': time(() => attackMatrix(db, q({ window: '24h' }), Date.now())),
      'text search, first page': time(() => listEvents(db, q({ q: 'svc-4321' }))),
    };
    const out = {
      events: N,
      batch: BATCH,
      fillSeconds: +fillS.toFixed(1),
      insertPerSecond: Math.round(N / fillS),
      batchInsertMs: {
        median: +batchMs[Math.floor(batchMs.length / 2)].toFixed(2),
        p99: +batchMs[Math.floor(batchMs.length * 0.99)].toFixed(2),
      },
      dbBytes: statSync(file).size,
      queries,
    };
    mkdirSync(join(__dirname, '../../bench/out'), { recursive: true });
    writeFileSync(join(__dirname, '../../bench/out/console.json'), `${JSON.stringify(out, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify({ ...out, queries: undefined }, null, 2)}\n`);
    for (const [k, v] of Object.entries(queries))
      process.stdout.write(`${k.padEnd(48)} median ${v.medianMs} ms, max ${v.maxMs} ms, ${v.rows} rows\n`);
    writeFileSync(join(__dirname, '../../bench/CONSOLE.md'), consoleReport(out));
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** bench/CONSOLE.md: this run's figures, the commit and command that made them. */
function consoleReport(out: {
  events: number;
  batch: number;
  fillSeconds: number;
  insertPerSecond: number;
  batchInsertMs: { median: number; p99: number };
  dbBytes: number;
  queries: Record<string, { medianMs: number; maxMs: number; rows: number }>;
}): string {
  const git = (...a: string[]) => {
    try {
      return execFileSync('git', a, { cwd: join(__dirname, '../..'), encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  };
  const dirty = git('status', '--porcelain', '--untracked-files=no') ? ' (tree with uncommitted changes)' : '';
  const rows = Object.entries(out.queries).map(([k, v]) => `| ${k} | ${v.medianMs} | ${v.maxMs} | ${v.rows} |`);
  return [
    '# The console database at scale',
    '',
    `Generated by \`node dist/bench/console.js\` (CONSOLE_EVENTS=${out.events}, CONSOLE_BATCH=${out.batch}, ` +
      `CONSOLE_QUERY_REPS=${REPS}) at ${new Date().toISOString()}; do not edit: re-run instead.`,
    '',
    `Code measured: git ${git('rev-parse', '--short', 'HEAD')}${dirty}. Machine: load average at the end ` +
      `${loadavg()[0].toFixed(1)} (shared: absolute times here are an upper bound).`,
    '',
    `Filling: ${out.events.toLocaleString('en')} events in ${out.fillSeconds} s (${out.insertPerSecond.toLocaleString('en')} events/s), ` +
      `one transaction per node per batch of ${out.batch}: ${out.batchInsertMs.median} ms median, ${out.batchInsertMs.p99} ms p99; ` +
      `database file ${(out.dbBytes / 2 ** 30).toFixed(2)} GiB.`,
    '',
    `Queries, each run ${REPS} times on the full database (target of the feed's first page and a filtered container query: under 200 ms):`,
    '',
    '| query | median ms | max ms | rows |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

void main();
