// A sensor on a pipe whose reader goes away: `vite-node stdout-epipe.ts | head -n 3`.
// Publishes until the stdout sink reports EPIPE, then prints its counters on stderr and exits 0.

import pino from 'pino';
import { startSinks } from '../../src/sinks/open';
import { syntheticEvent } from './synthetic';

async function main(): Promise<void> {
  const logger = pino({ level: 'warn' }, pino.destination({ fd: 2, sync: true }));
  let closed = false;
  const hub = await startSinks([], { logger, node: 'n', bootId: 'b', onStdoutClosed: () => (closed = true) });
  const deadline = Date.now() + 10_000;
  let seq = 0;
  while (!closed && Date.now() < deadline) {
    for (let i = 0; i < 100; i++) hub.publish(syntheticEvent(++seq, 'p', 'n', 'b'));
    await new Promise((r) => setTimeout(r, 5));
  }
  await hub.close();
  process.stderr.write(`${JSON.stringify({ closed, stats: hub.stats().sinks[0] })}\n`);
}

void main();
