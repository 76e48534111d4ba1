// Plays the sensor in the delivery tests: publishes synthetic stamped events through a SinkHub
// (startSinks, as `ctrwatch run` does) and prints its progress as JSON lines on stdout.
//   vite-node test/delivery/driver.ts '<json DriverArgs>'
// Events: see synthetic.ts.

import pino from 'pino';
import { startSinks } from '../../src/sinks/open';
import { syntheticEvent } from './synthetic';

export interface DriverArgs {
  outputs: string[];
  spoolDir: string;
  spoolMaxBytes?: number;
  count: number;
  /** Events a second (0: as fast as the hub takes them). */
  rate: number;
  run: string;
  node?: string;
  bootId?: string;
  tokenFile?: string;
  tls?: { ca?: string; cert?: string; key?: string };
  /** Wait this long for everything to be acknowledged at the end. */
  drainMs?: number;
  ackTimeoutMs?: number;
  segmentBytes?: number;
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]!) as DriverArgs;
  const logger = pino({ level: process.env.DRIVER_LOG ?? 'warn' }, pino.destination({ fd: 2, sync: true }));
  const node = a.node ?? 'node-a';
  const bootId = a.bootId ?? '3f1e2d4c-0000-4000-8000-000000000001';
  const hub = await startSinks(a.outputs, {
    logger,
    node,
    bootId,
    spoolDir: a.spoolDir,
    spoolMaxBytes: a.spoolMaxBytes,
    tokenFile: a.tokenFile,
    tls: a.tls,
    tuning: {
      backoffInitialMs: 100,
      backoffMaxMs: 1000,
      ackTimeoutMs: a.ackTimeoutMs ?? 5000,
      closeTimeoutMs: a.drainMs ?? 20_000,
      segmentBytes: a.segmentBytes,
    },
  });
  const report = (what: string) => {
    const s = hub.stats();
    const g = s.sinks[0]!;
    process.stdout.write(
      `${JSON.stringify({ what, instanceId: hub.instanceId, offered: g.offered, delivered: g.delivered, spooled: g.spooledEvents, queued: g.queued, dropped: g.dropped, failures: g.failures, rss: process.memoryUsage().rss, t: Date.now() })}\n`,
    );
  };
  const timer = setInterval(() => report('progress'), 100);
  let seq = 0;
  const started = Date.now();
  while (seq < a.count) {
    const due = a.rate ? Math.min(a.count, Math.floor(((Date.now() - started) / 1000) * a.rate)) : Math.min(a.count, seq + 1000);
    while (seq < due) hub.publish(syntheticEvent(++seq, a.run, node, bootId));
    await new Promise((r) => setTimeout(r, a.rate ? 10 : 0));
  }
  report('published');
  await hub.close();
  clearInterval(timer);
  report('closed');
}

main().catch((err) => {
  process.stderr.write(`driver failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
