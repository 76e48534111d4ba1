// The reference collector as a process, for the delivery tests:
//   vite-node test/delivery/collector-proc.ts '<json CollectorOptions without logger>'
// Prints {"listening": "HOST:PORT"} once bound, then its stats every 200 ms; SIGTERM closes it.

import pino from 'pino';
import { runCollector, type CollectorOptions } from '../../src/collect/collector';

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2]!) as Omit<CollectorOptions, 'logger'>;
  const logger = pino({ level: process.env.COLLECTOR_LOG ?? 'warn' }, pino.destination({ fd: 2, sync: true }));
  const c = await runCollector({ ...o, logger });
  process.stdout.write(`${JSON.stringify({ listening: c.address, port: c.port })}\n`);
  const timer = setInterval(() => process.stdout.write(`${JSON.stringify({ stats: c.stats() })}\n`), 200);
  process.once('SIGTERM', () => {
    clearInterval(timer);
    setTimeout(() => process.exit(3), 8000).unref(); // a close that hangs fails the test, not the run
    void c.close().then(() => process.exit(0));
  });
}

main().catch((err) => {
  process.stderr.write(`collector failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
