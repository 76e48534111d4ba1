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
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CODE, exited, OUT, ROOT, track } from './lib';
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

export interface ShipResult {
  events: number;
  commands: string[];
  outputs: ShipOutput[];
  errors: string[];
  wallS: number;
}

async function runNode(args: string[], env: Record<string, string>): Promise<void> {
  const p = track(
    spawn(process.execPath, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } }),
  );
  let err = '';
  p.stderr!.on('data', (d) => (err = (err + d).slice(-2000)));
  const code = await exited(p);
  if (code !== 0) throw new Error(`${args[0]} exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`);
}

export async function runShip(cfg: { events: number; log: (m: string) => void }): Promise<ShipResult> {
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
  rmSync(dJson, { force: true });
  rmSync(fJson, { force: true });
  for (const o of res.outputs) cfg.log(`ship ${o.output}: ${Math.round(o.eventsPerS).toLocaleString('en-US')} events/s`);
  for (const e of res.errors) cfg.log(`ship failed: ${e}`);
  res.wallS = (Date.now() - t0) / 1000;
  return res;
}
