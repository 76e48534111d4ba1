// Fleet sinks throughput: events/s from offer() to acknowledged, to (1) a loopback OTLP/HTTP
// receiver (a worker thread) that gunzips and decodes every request with the official protos,
// and (2) a 3-node JetStream cluster (Debian's nats-server, loopback, temp store dirs, R3
// stream). Prints figures; not a timed test. Run: node dist/bench/fleet.js [events]
// (FLEET_JSON=<file>: also writes the figures there, as run.js's `ship` part reads them).
// Every nats-server started here is killed on exit.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { connect } from 'nats';
import pino from 'pino';
import { loadEventSchema } from '../src/proto/schema';
import { compileEventCodec } from '../src/proto/codec';
import { openSink } from '../src/sinks/open';
import { parseOutput, type RemoteSpec } from '../src/sinks/urls';
import { classOfKind, type Sink } from '../src/sinks/types';
import { syntheticEvent } from '../test/support/events';
import { freePort } from '../test/support/net';

const N = Number(process.argv[2] ?? 200_000);

/** One output's figures, as FLEET_JSON holds them. */
export interface FleetRun {
  label: string;
  events: number;
  seconds: number;
  eventsPerS: number;
  delivered: number;
  dropped: Record<string, number>;
  /** Sender CPU ÷ wall time. */
  senderCpuShare: number;
}
const results: FleetRun[] = [];
const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
const codec = compileEventCodec(loadEventSchema());
const procs: ChildProcess[] = [];
const tmps: string[] = [];
const cleanup = () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const d of tmps) fs.rmSync(d, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(1));

const tmp = (p: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), p));
  tmps.push(d);
  return d;
};

async function run(label: string, spec: RemoteSpec, extra: () => string, after?: () => Promise<void>, maxInflight?: number): Promise<void> {
  const s = (await openSink(spec, {
    logger,
    codec,
    node: 'bench-node',
    bootId: 'boot',
    instanceId: `bench-${Date.now()}`,
    spoolDir: tmp('ctrwatch-fleet-spool-'),
    version: '0.1.0',
    tuning: { queueMaxEvents: N + 1, queueMaxBytes: 1 << 30, closeTimeoutMs: 60_000, maxInflight },
  })) as Sink & { whenDelivered(): Promise<void> };
  const evs = Array.from({ length: N }, (_, i) => {
    const event = syntheticEvent(i + 1, 'b', 'bench-node', 'boot');
    const { bytes, kind } = codec.encodeKind(event);
    return { event, bytes, seq: BigInt(i + 1), cls: classOfKind(kind) };
  });
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (const e of evs) s.offer({ ...e, offeredMs: Date.now() });
  await s.whenDelivered();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const st = s.stats();
  await s.close();
  await after?.();
  results.push({
    label,
    events: N,
    seconds: secs,
    eventsPerS: N / secs,
    delivered: st.delivered,
    dropped: st.dropped as Record<string, number>,
    senderCpuShare: (cpu.user + cpu.system) / 1e6 / secs,
  });
  console.log(
    `${label.padEnd(34)} ${N} events in ${secs.toFixed(2)} s = ${Math.round(N / secs).toLocaleString('en')} events/s, delivered ${st.delivered}, dropped ${JSON.stringify(st.dropped)}, sender CPU ${(((cpu.user + cpu.system) / 1e6 / secs) * 100).toFixed(0)}% ${extra()}`,
  );
}

// The receiver runs in a worker thread (its own event loop and core), as a collector would.
const RECEIVER = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const zlib = require('node:zlib');
const path = require('node:path');
const protobuf = require(workerData.protobufjs);
const root = new protobuf.Root();
root.resolvePath = (_o, t) => (path.isAbsolute(t) ? t : path.join(workerData.protos, t));
root.loadSync('opentelemetry/proto/collector/logs/v1/logs_service.proto');
const Req = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
const c = { records: 0, requests: 0, wire: 0 };
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (d) => chunks.push(d));
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    c.wire += raw.length;
    const m = Req.decode(req.headers['content-encoding'] === 'gzip' ? zlib.gunzipSync(raw) : raw);
    for (const rl of m.resourceLogs) for (const sl of rl.scopeLogs) c.records += sl.logRecords.length;
    c.requests++;
    res.writeHead(200).end();
  });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
parentPort.on('message', (m) => {
  if (m === 'stats') parentPort.postMessage({ ...c });
  if (m === 'reset') { c.records = c.requests = c.wire = 0; }
});
`;

async function otlp(): Promise<void> {
  const protos = path.join(path.dirname(require.resolve('@opentelemetry/otlp-grpc-exporter-base/package.json')), 'build', 'protos');
  const w = new Worker(RECEIVER, { eval: true, workerData: { protos, protobufjs: require.resolve('protobufjs') } });
  const next = () => new Promise<{ port?: number; records?: number; requests?: number; wire?: number }>((r) => w.once('message', r));
  const { port } = await next();
  let last = { records: 0, requests: 0, wire: 0 };
  for (const q of ['batch=1000', 'batch=1000&compress=none']) {
    w.postMessage('reset');
    await run(
      `otlp+http (${q})`,
      parseOutput(`otlp+http://127.0.0.1:${port}?${q}`, { insecurePlaintext: true }) as RemoteSpec,
      () =>
        `[receiver: ${last.records} records, ${last.requests} requests, ${(last.wire / Math.max(last.records, 1)).toFixed(0)} B/record on the wire]`,
      async () => {
        w.postMessage('stats');
        last = (await next()) as typeof last;
      },
    );
  }
  await w.terminate();
}

async function jetstream(): Promise<void> {
  const bin = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => fs.existsSync(p));
  if (!bin) return console.log('nats-server not installed: JetStream skipped');
  const base = tmp('ctrwatch-fleet-nats-');
  const ports = await Promise.all([0, 1, 2].map(freePort));
  const cports = await Promise.all([0, 1, 2].map(freePort));
  for (let i = 0; i < 3; i++) {
    const conf = path.join(base, `n${i}.conf`);
    const routes = cports
      .filter((_, j) => j !== i)
      .map((p) => `"nats-route://127.0.0.1:${p}"`)
      .join(', ');
    fs.writeFileSync(
      conf,
      `server_name: n${i}\nlisten: 127.0.0.1:${ports[i]}\njetstream { store_dir: "${path.join(base, `n${i}`)}" }\ncluster { name: bench, listen: 127.0.0.1:${cports[i]}, routes: [${routes}] }\n`,
    );
    procs.push(spawn(bin, ['-c', conf], { stdio: 'ignore' }));
  }
  const servers = ports.map((p) => `127.0.0.1:${p}`);
  for (let i = 0; ; i++) {
    try {
      const nc = await connect({ servers, timeout: 1000, maxReconnectAttempts: 0 });
      try {
        await (await nc.jetstreamManager({ timeout: 2000 })).getAccountInfo();
      } finally {
        await nc.close();
      }
      break;
    } catch (err) {
      if (i > 120) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  for (const [batch, inflight, replicas] of (process.env.NATS_R1
    ? [[1000, 4, 1]]
    : [
        [1000, 4, 3],
        [2000, 8, 3],
      ]) as [number, number, number][]) {
    await run(
      `nats JetStream R${replicas} (batch=${batch}, ${inflight} in flight)`,
      parseOutput(`nats://${servers.join(',')}/ctrwatch.bench.${batch}?stream=BENCH${batch}&replicas=${replicas}&batch=${batch}`, {
        insecurePlaintext: true,
      }) as RemoteSpec,
      () => '',
      undefined,
      inflight,
    );
  }
}

void (async () => {
  console.log(
    `fleet sinks, ${N} synthetic events (~${codec.encode(syntheticEvent(1, 'b', 'n', 'b')).length} B each), ${os.cpus().length} cores, node ${process.version}`,
  );
  await otlp();
  await jetstream();
  if (process.env.FLEET_JSON) fs.writeFileSync(process.env.FLEET_JSON, JSON.stringify(results));
  cleanup();
  process.exit(0);
})().catch((err: unknown) => {
  console.error(err);
  cleanup();
  process.exit(1);
});
