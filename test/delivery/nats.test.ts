// The NATS JetStream sink against a real 3-node JetStream cluster of Debian's nats-server on
// loopback (random ports, temporary store dirs). Every nats-server started here is killed in
// afterEach/afterAll and on process exit, whatever happens.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect, type NatsConnection } from 'nats';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { compileEventCodec } from '../../src/proto/codec';
import { loadEventSchema } from '../../src/proto/schema';
import { JetStreamCollector } from '../../src/collect/jetstream';
import { openSink } from '../../src/sinks/open';
import { parseOutput } from '../../src/sinks/urls';
import { msgId, type NatsSpec } from '../../src/sinks/remote/nats';
import { classOfKind, type Sink } from '../../src/sinks/types';
import { syntheticEvent } from './synthetic';
import { requires } from '../support/env';
import { freePort } from '../support/net';
import { killTracked, track } from '../support/children';

const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
const codec = compileEventCodec(loadEventSchema());
const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => fs.existsSync(p));
const haveNats = !!NATS_SERVER && spawnSync(NATS_SERVER, ['--version']).status === 0;

const dirs: string[] = [];
const killAllNats = () => void killTracked();
process.on('exit', killAllNats);

interface Node {
  name: string;
  port: number;
  conf: string;
  proc?: ChildProcess;
  log: string[];
}

class Cluster {
  nodes: Node[] = [];
  static async start(n = 3): Promise<Cluster> {
    const c = new Cluster();
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrwatch-nats-'));
    dirs.push(base);
    const ports = await Promise.all(Array.from({ length: n }, freePort));
    const cports = await Promise.all(Array.from({ length: n }, freePort));
    for (let i = 0; i < n; i++) {
      const name = `n${i + 1}`;
      const routes = cports
        .filter((_, j) => j !== i)
        .map((p) => `"nats-route://127.0.0.1:${p}"`)
        .join(', ');
      const conf = path.join(base, `${name}.conf`);
      fs.writeFileSync(
        conf,
        `server_name: ${name}\nlisten: 127.0.0.1:${ports[i]}\njetstream { store_dir: "${path.join(base, name)}" }\ncluster { name: ctrwatch-test, listen: 127.0.0.1:${cports[i]}, routes: [${routes}] }\n`,
      );
      c.nodes.push({ name, port: ports[i]!, conf, log: [] });
    }
    for (const node of c.nodes) c.up(node);
    await c.ready();
    return c;
  }

  up(node: Node): void {
    const p = spawn(NATS_SERVER!, ['-c', node.conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    track(p);
    const keep = (d: Buffer) => {
      node.log.push(d.toString());
      if (node.log.length > 200) node.log.shift();
    };
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    node.proc = p;
  }

  async down(node: Node, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = node.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await exited;
  }

  get url(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  /** JetStream answers (a meta leader exists). */
  async ready(ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    let last: unknown;
    while (Date.now() < end) {
      let nc: NatsConnection | undefined;
      try {
        nc = await connect({ servers: this.nodes.map((n) => `127.0.0.1:${n.port}`), timeout: 1000, maxReconnectAttempts: 0 });
        const jsm = await nc.jetstreamManager({ timeout: 2000 });
        await jsm.getAccountInfo();
        return;
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, 250));
      } finally {
        await nc?.close().catch(() => undefined);
      }
    }
    throw new Error(
      `JetStream cluster not ready: ${String(last)}\n${this.nodes
        .map((n) => n.log.join(''))
        .join('\n')
        .slice(-3000)}`,
    );
  }

  /** Every message of the stream: seq of each event (from its bytes) and its msg id. */
  async read(stream: string, expect: number, ms = 30_000): Promise<{ seqs: number[]; ids: string[]; messages: number }> {
    const nc = await connect({ servers: this.nodes.map((n) => `127.0.0.1:${n.port}`), timeout: 2000 });
    try {
      const jsm = await nc.jetstreamManager({ timeout: 5000 });
      // Right after a node comes back the cluster may still be electing: ask until it answers.
      let info: Awaited<ReturnType<typeof jsm.streams.info>> | undefined;
      for (let i = 0; !info; i++) {
        try {
          info = await jsm.streams.info(stream);
        } catch (err) {
          if (i >= 20) throw err;
          await sleep(500);
        }
      }
      const js = nc.jetstream({ timeout: 5000 });
      const c = await js.consumers.get(stream);
      const seqs: number[] = [];
      const ids: string[] = [];
      const end = Date.now() + ms;
      while (seqs.length < info.state.messages && Date.now() < end) {
        const batch = await c.fetch({ max_messages: 1000, expires: 2000 });
        for await (const m of batch) {
          seqs.push(Number(codec.head(m.data).seq));
          ids.push(m.headers?.get('Nats-Msg-Id') ?? '');
        }
      }
      void expect;
      return { seqs, ids, messages: info.state.messages };
    } finally {
      await nc.close();
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.down(n)));
  }
}

const clusters: Cluster[] = [];
const sinks: Sink[] = [];
afterEach(async () => {
  await Promise.allSettled(sinks.splice(0).map((s) => s.close()));
  await Promise.allSettled(clusters.splice(0).map((c) => c.stop()));
  killAllNats();
});
afterAll(() => {
  killAllNats();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sinkFor(c: Cluster, stream: string) {
  const spec = parseOutput(`nats://${c.url}/ctrwatch.events.${stream}?stream=${stream}&replicas=3&batch=200`, {
    insecurePlaintext: true,
  }) as NatsSpec;
  const spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrwatch-nats-spool-'));
  dirs.push(spoolDir);
  const s = await openSink(spec, {
    logger,
    codec,
    node: 'node-a',
    bootId: 'boot-1',
    instanceId: 'inst-1',
    spoolDir,
    version: '0.1.0',
    tuning: { backoffInitialMs: 100, backoffMaxMs: 1000, ackTimeoutMs: 2000, closeTimeoutMs: 60_000 },
  });
  sinks.push(s);
  return s;
}

/** Offer seq from..to at about `rate` events/s. */
async function feed(s: Sink, from: number, to: number, rate: number): Promise<void> {
  const tick = 20;
  const per = Math.max(1, Math.round((rate * tick) / 1000));
  for (let seq = from; seq <= to;) {
    for (let i = 0; i < per && seq <= to; i++, seq++) {
      const event = syntheticEvent(seq, 'r1', 'node-a', 'boot-1');
      const { bytes, kind } = codec.encodeKind(event);
      s.offer({ event, bytes, seq: BigInt(seq), cls: classOfKind(kind), offeredMs: Date.now() });
    }
    await sleep(tick);
  }
}

function checkExactlyOnce(got: { seqs: number[]; ids: string[]; messages: number }, N: number): void {
  expect(got.messages).toBe(N);
  expect(got.seqs).toHaveLength(N);
  expect(new Set(got.seqs).size).toBe(N);
  expect(Math.min(...got.seqs)).toBe(1);
  expect(Math.max(...got.seqs)).toBe(N);
  expect(got.ids[0]).toBe(msgId('node-a', 'boot-1', 'inst-1', got.seqs[0]!));
}

describe.runIf(requires(haveNats, 'nats-server (apt-get install nats-server)'))('nats JetStream sink (3-node cluster)', () => {
  it('one node killed while publishing: after recovery every event is in the stream exactly once', async () => {
    const c = await Cluster.start();
    clusters.push(c);
    const s = await sinkFor(c, 'KILL1');
    const N = 6000;
    const feeding = feed(s, 1, N, 2000);
    await sleep(1000);
    await c.down(c.nodes[0]!, 'SIGKILL');
    await sleep(2000);
    c.up(c.nodes[0]!);
    await feeding;
    await (s as unknown as { whenDelivered(): Promise<void> }).whenDelivered();
    const st = s.stats();
    expect(st).toMatchObject({ offered: N, delivered: N, dropped: {}, spooledEvents: 0 });
    await c.ready(60_000);
    checkExactlyOnce(await c.read('KILL1', N), N);
  }, 120_000);

  it('all three stopped for a few seconds: nothing lost when they return', async () => {
    const c = await Cluster.start();
    clusters.push(c);
    const s = await sinkFor(c, 'ALL3');
    const N = 5000;
    const feeding = feed(s, 1, N, 1500);
    await sleep(1000);
    await c.stop();
    await sleep(3000);
    expect(s.stats().delivered).toBeLessThan(N);
    for (const n of c.nodes) c.up(n);
    await feeding;
    await c.ready(60_000);
    await (s as unknown as { whenDelivered(): Promise<void> }).whenDelivered();
    const st = s.stats();
    expect(st).toMatchObject({ offered: N, delivered: N, dropped: {}, spooledEvents: 0 });
    expect(Object.keys(st.failures).some((k) => k.startsWith('nats_'))).toBe(true);
    checkExactlyOnce(await c.read('ALL3', N), N);
  }, 180_000);

  it('collect/jetstream: a durable consumer writes per-node JSON lines, once, across a collector restart', async () => {
    const c = await Cluster.start();
    clusters.push(c);
    const s = await sinkFor(c, 'COLLECT');
    const N = 3000;
    await feed(s, 1, N, 20_000);
    await (s as unknown as { whenDelivered(): Promise<void> }).whenDelivered();
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrwatch-js-out-'));
    dirs.push(outDir);
    const servers = c.nodes.map((n) => `127.0.0.1:${n.port}`);
    const lines = () =>
      fs.existsSync(path.join(outDir, 'node-a'))
        ? fs
            .readdirSync(path.join(outDir, 'node-a'))
            .filter((f) => f.endsWith('.jsonl'))
            .flatMap((f) =>
              fs
                .readFileSync(path.join(outDir, 'node-a', f), 'utf8')
                .split('\n')
                .filter(Boolean),
            )
        : [];
    let col = await JetStreamCollector.start({ servers, stream: 'COLLECT', durable: 'test', outDir, codec, logger, batch: 500 });
    for (let i = 0; i < 200 && col.stats().written < 1000; i++) await sleep(25);
    await col.close();
    const first = lines().length;
    expect(first).toBeGreaterThan(0);
    col = await JetStreamCollector.start({ servers, stream: 'COLLECT', durable: 'test', outDir, codec, logger, batch: 500 });
    for (let i = 0; i < 400 && lines().length < N; i++) await sleep(50);
    await col.close();
    const seqs = lines().map((l) => Number((JSON.parse(l) as { seq: string }).seq));
    expect(seqs).toHaveLength(N);
    expect(new Set(seqs).size).toBe(N);
  }, 120_000);
});
