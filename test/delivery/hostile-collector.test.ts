// Collectors that misbehave: one that never answers, one that resets every connection, one
// that answers garbage, one that acknowledges the wrong batch. The sensor side (a driver
// process) keeps bounded memory, does not crash, counts what happened, and once a real
// collector takes the port over, delivers every event exactly once.

import * as grpc from '@grpc/grpc-js';
import * as net from 'node:net';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCollector } from '../../src/collect/collector';
import { SHIP_PATH } from '../../src/proto/wire';
import { decodeBatch, encodeAck } from '../../src/proto/wire';
import { collected, killAll, sleep, spawnTs, tally, tmpDir, removeTmpDirs } from './helpers';

const logger = pino({ level: 'silent' });
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killAll();
  for (const c of closers.splice(0)) await c();
});
afterAll(removeTmpDirs);

type Handler = (call: grpc.ServerDuplexStream<Buffer, Buffer>) => void;

async function fakeCollector(handler: Handler, port = 0): Promise<{ port: number; close: () => Promise<void> }> {
  const server = new grpc.Server();
  const id = (b: Buffer) => b;
  server.addService(
    {
      Ship: {
        path: SHIP_PATH,
        requestStream: true,
        responseStream: true,
        requestSerialize: id,
        requestDeserialize: id,
        responseSerialize: id,
        responseDeserialize: id,
      },
    },
    { Ship: handler },
  );
  const bound = await new Promise<number>((res, rej) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  const close = () =>
    new Promise<void>((r) => {
      server.forceShutdown();
      r();
    });
  closers.push(close);
  return { port: bound, close };
}

/** A TCP server that accepts and resets every connection at once. */
async function resetter(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer((s) => s.resetAndDestroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = () => new Promise<void>((r) => server.close(() => r()));
  closers.push(close);
  return { port: (server.address() as net.AddressInfo).port, close };
}

const N = 4000;

async function scenario(start: () => Promise<{ port: number; close: () => Promise<void> }>, expectFailure: string) {
  const bad = await start();
  const spool = tmpDir('spool');
  const d = spawnTs('driver.ts', {
    outputs: [`grpc://127.0.0.1:${bad.port}`],
    spoolDir: spool,
    count: N,
    rate: 2000,
    run: 'h',
    ackTimeoutMs: 1000,
    drainMs: 30_000,
  });
  const hurt = await d.waitLine((l) => ((l.failures as Record<string, number>)[expectFailure] ?? 0) >= 2, 20_000);
  expect(hurt.delivered).toBe(0);
  await sleep(1000);
  await bad.close();
  const out = tmpDir('out');
  const real = await runCollector({ listen: `127.0.0.1:${bad.port}`, outDir: out, logger });
  closers.push(() => real.close());
  const closed = await d.waitLine((l) => l.what === 'closed', 60_000);
  expect(closed).toMatchObject({ delivered: N, spooled: 0, dropped: {} });
  const rss = d.lines.map((l) => l.rss as number).filter(Boolean);
  expect(Math.max(...rss) - rss[0]!).toBeLessThan(100 << 20);
  const counts = tally(collected(out));
  expect(counts.size).toBe(N);
  expect([...counts.values()].every((n) => n === 1)).toBe(true);
  expect(await d.exited).toBe(0);
  return closed.failures as Record<string, number>;
}

describe('misbehaving collectors', () => {
  it('one that takes batches and never answers: ack timeouts, then delivery', async () => {
    const f = await scenario(() => fakeCollector((call) => call.on('data', () => undefined)), 'ack_timeout');
    expect(f.ack_timeout).toBeGreaterThanOrEqual(2);
  });

  it('one that resets every connection: counted as unavailable, retried with backoff', async () => {
    const f = await scenario(resetter, 'unavailable');
    expect(f.unavailable).toBeGreaterThanOrEqual(2);
  });

  it('one that answers garbage: counted as internal (unparsable ack)', async () => {
    const f = await scenario(
      () => fakeCollector((call) => call.on('data', () => call.write(Buffer.from([0xff, 0xff, 0xff, 0x07, 0x00])))),
      'internal',
    );
    expect(f.internal).toBeGreaterThanOrEqual(2);
  });

  it('one that acknowledges the wrong batch: counted as bad_ack, nothing taken as delivered', async () => {
    const f = await scenario(
      () =>
        fakeCollector((call) =>
          call.on('data', (b: Buffer) => {
            const { header } = decodeBatch(b);
            call.write(
              encodeAck({ instanceId: header.instanceId, seq: 10n ** 9n, batchId: header.batchId + 7n, written: 1, duplicates: 0 }),
            );
          }),
        ),
      'bad_ack',
    );
    expect(f.bad_ack).toBeGreaterThanOrEqual(2);
  });
});
