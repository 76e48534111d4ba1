/**
 * The `ship` part: events/s from the sensor's sinks to each remote output, end to end, one after
 * the other in fresh processes (no root needed):
 *   - delivery.js (DELIVERY_ONLY=sinks): stdout to /dev/null, file:, and grpc:// to a loopback
 *     collector: every event encoded, spooled, shipped, written by the collector, acked;
 *   - fleet.js: OTLP/HTTP to a loopback receiver that gunzips and decodes every request, and a
 *     3-node JetStream cluster (R3), both through the sinks' one SpooledSink loop.
 * The events are synthetic (test/support/events.ts), all of one size; the figures are rates of
 * the shipping path, not of the kernel or the pipeline.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CODE, exited, OUT, ROOT, track, treeCommit } from './lib';
import type { FleetRun } from './fleet';

export interface ShipOutput {
  /** What was measured, e.g. "grpc loopback", "otlp+http (batch=1000)". */
  output: string;
  events: number;
  seconds: number;
  eventsPerS: number;
  delivered?: number;
  /** Where the figure comes from. */
  tool: 'delivery.js' | 'fleet.js';
}

/** gRPC end to end, a built tree of an earlier commit (BENCH_SHIP_BEFORE) against this one, in interleaved pairs. */
export interface GrpcBeforeAfter {
  beforeDir: string;
  beforeCommit?: string;
  events: number;
  pairs: { before: number; after: number; order: 'AB' | 'BA' }[];
  /** after ÷ before events/s, per pair. */
  ratios: number[];
}

export interface ShipResult {
  events: number;
  commands: string[];
  outputs: ShipOutput[];
  grpcBeforeAfter?: GrpcBeforeAfter;
  errors: string[];
  wallS: number;
}

async function runNode(args: string[], env: Record<string, string>, cwd = ROOT): Promise<void> {
  const p = track(
    spawn(process.execPath, args, { cwd, detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } }),
  );
  let err = '';
  p.stderr!.on('data', (d) => (err = (err + d).slice(-2000)));
  const code = await exited(p);
  if (code !== 0) throw new Error(`${args[0]} exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`);
}

type SinkRow = { sink: string; events: number; seconds: number; eventsPerS: number; delivered?: number };

/** One delivery.js sinks run of a tree (this one, or the before tree, which writes to its own bench/out); its rows. */
async function deliverySinks(tree: string, events: number, json: string): Promise<SinkRow[]> {
  rmSync(json, { force: true });
  await runNode(
    [join(tree, 'dist', 'bench', 'delivery.js')],
    { DELIVERY_ONLY: 'sinks', DELIVERY_EVENTS: String(events), DELIVERY_JSON: json },
    tree,
  );
  // An older tree's delivery.js may not know DELIVERY_JSON: it writes its own bench/out/delivery.json.
  const file = tree === CODE || existsSync(json) ? json : join(tree, 'bench', 'out', 'delivery.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { sinks: SinkRow[] }).sinks;
}

/**
 * BENCH_SHIP_BEFORE=<dir>: a built tree of an earlier commit (e.g. `git worktree add DIR <commit>`,
 * its own node_modules, `make build`): its delivery.js and this one's, in BENCH_SHIP_PAIRS pairs,
 * the order alternating; the gRPC rows compared.
 */
async function grpcBeforeAfter(dir: string, events: number, pairs: number, log: (m: string) => void): Promise<GrpcBeforeAfter> {
  const res: GrpcBeforeAfter = { beforeDir: dir, beforeCommit: treeCommit(dir), events, pairs: [], ratios: [] };
  const json = join(OUT, 'ship-pair.json');
  const grpc = (rows: SinkRow[]) => rows.find((r) => r.sink.startsWith('grpc'))?.eventsPerS ?? NaN;
  for (let i = 0; i < pairs; i++) {
    const order = i % 2 ? 'BA' : 'AB';
    const got: Record<string, number> = {};
    for (const who of order === 'AB' ? ['before', 'after'] : ['after', 'before'])
      got[who] = grpc(await deliverySinks(who === 'before' ? dir : CODE, events, json));
    res.pairs.push({ before: got.before!, after: got.after!, order });
    res.ratios.push(got.after! / got.before!);
    log(`ship grpc before/after pair ${i + 1}/${pairs}: ${Math.round(got.before!)} → ${Math.round(got.after!)} events/s`);
  }
  rmSync(json, { force: true });
  return res;
}

export async function runShip(cfg: { events: number; log: (m: string) => void; before?: string; pairs?: number }): Promise<ShipResult> {
  const t0 = Date.now();
  const res: ShipResult = {
    events: cfg.events,
    commands: [`DELIVERY_ONLY=sinks DELIVERY_EVENTS=${cfg.events} node dist/bench/delivery.js`, `node dist/bench/fleet.js ${cfg.events}`],
    outputs: [],
    errors: [],
    wallS: 0,
  };
  const dJson = join(OUT, 'ship-delivery.json');
  const fJson = join(OUT, 'ship-fleet.json');
  try {
    await runNode([join(CODE, 'dist', 'bench', 'delivery.js')], {
      DELIVERY_ONLY: 'sinks',
      DELIVERY_EVENTS: String(cfg.events),
      DELIVERY_JSON: dJson,
    });
    const d = JSON.parse(readFileSync(dJson, 'utf8')) as {
      sinks: { sink: string; events: number; seconds: number; eventsPerS: number; delivered?: number }[];
    };
    for (const s of d.sinks)
      res.outputs.push({
        output: s.sink,
        events: s.events,
        seconds: s.seconds,
        eventsPerS: s.eventsPerS,
        delivered: s.delivered,
        tool: 'delivery.js',
      });
  } catch (e) {
    res.errors.push(`delivery: ${(e as Error).message}`);
  }
  try {
    await runNode([join(CODE, 'dist', 'bench', 'fleet.js'), String(cfg.events)], { FLEET_JSON: fJson });
    const f = JSON.parse(readFileSync(fJson, 'utf8')) as FleetRun[];
    for (const r of f)
      res.outputs.push({
        output: r.label,
        events: r.events,
        seconds: r.seconds,
        eventsPerS: r.eventsPerS,
        delivered: r.delivered,
        tool: 'fleet.js',
      });
  } catch (e) {
    res.errors.push(`fleet: ${(e as Error).message}`);
  }
  if (cfg.before) {
    try {
      res.grpcBeforeAfter = await grpcBeforeAfter(cfg.before, Math.round(cfg.events / 2), cfg.pairs ?? 3, cfg.log);
    } catch (e) {
      res.errors.push(`grpc before/after: ${(e as Error).message}`);
    }
  }
  rmSync(dJson, { force: true });
  rmSync(fJson, { force: true });
  for (const o of res.outputs) cfg.log(`ship ${o.output}: ${Math.round(o.eventsPerS).toLocaleString('en-US')} events/s`);
  for (const e of res.errors) cfg.log(`ship failed: ${e}`);
  res.wallS = (Date.now() - t0) / 1000;
  return res;
}
