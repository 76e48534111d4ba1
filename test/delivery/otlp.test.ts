// The OTLP/HTTP logs sink against a real loopback HTTP receiver that decodes every request with
// the official protos (loaded from @opentelemetry/otlp-grpc-exporter-base in node_modules).

import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import pino from 'pino';
import * as protobuf from 'protobufjs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { compileEventCodec } from '../../src/proto/codec';
import { loadEventSchema } from '../../src/proto/schema';
import { openSink } from '../../src/sinks/open';
import { parseOutput } from '../../src/sinks/urls';
import type { OtlpSpec } from '../../src/sinks/remote/otlp';
import { OutputSpecError, classOfKind, type Sink, type SinkEvent } from '../../src/sinks/types';
import { syntheticEvent } from './synthetic';

const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
const codec = compileEventCodec(loadEventSchema());

// The official protos, straight from node_modules (independent of src/proto/otlp-proto.ts).
const PROTOS = path.join(path.dirname(require.resolve('@opentelemetry/otlp-grpc-exporter-base/package.json')), 'build', 'protos');
const root = new protobuf.Root();
root.resolvePath = (_o, t) => (path.isAbsolute(t) ? t : path.join(PROTOS, t));
root.loadSync('opentelemetry/proto/collector/logs/v1/logs_service.proto');
const Req = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');

interface Got {
  headers: http.IncomingHttpHeaders;
  url: string;
  req: {
    resourceLogs: {
      resource: { attributes: { key: string; value: Record<string, unknown> }[] };
      scopeLogs: {
        logRecords: {
          timeUnixNano: string;
          severityNumber: number;
          severityText: string;
          body: { stringValue: string };
          attributes: { key: string; value: { stringValue?: string; arrayValue?: { values: { stringValue: string }[] } } }[];
        }[];
      }[];
    }[];
  };
}

type Responder = (n: number, logRecords: number) => { status: number; headers?: Record<string, string>; body?: Buffer } | undefined;

const servers: http.Server[] = [];
const dirs: string[] = [];
const sinks: Sink[] = [];
afterEach(async () => {
  await Promise.allSettled(sinks.splice(0).map((s) => s.close()));
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise((r) => {
          s.closeAllConnections();
          s.close(r);
        }),
    ),
  );
});
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function receiver(respond: Responder = () => undefined) {
  const got: Got[] = [];
  const times: number[] = [];
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const i = n++;
      times.push(Date.now());
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = zlib.gunzipSync(raw);
      const decoded = Req.toObject(Req.decode(raw), { longs: String, enums: Number, defaults: false }) as Got['req'];
      const r = respond(i, records([{ headers: req.headers, url: req.url ?? '', req: decoded }]).length);
      if (r) {
        res.writeHead(r.status, r.headers).end(r.body ?? 'nope');
        return;
      }
      got.push({ headers: req.headers, url: req.url ?? '', req: decoded });
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, got, times, requests: () => n };
}

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrwatch-otlp-'));
  dirs.push(d);
  return d;
}

async function sink(url: string, tuning = {}) {
  const spec = parseOutput(url, { insecurePlaintext: true }) as OtlpSpec;
  const s = await openSink(spec, {
    logger,
    codec,
    node: 'node-a',
    bootId: 'boot-1',
    instanceId: 'inst-1',
    spoolDir: tmp(),
    version: '0.1.0',
    tuning: { backoffInitialMs: 50, backoffMaxMs: 200, closeTimeoutMs: 3000, ...tuning },
  });
  sinks.push(s);
  return s;
}

function offer(s: Sink, from: number, to: number): void {
  for (let seq = from; seq <= to; seq++) {
    const event = syntheticEvent(seq, 'r1', 'node-a', 'boot-1');
    const { bytes, kind } = codec.encodeKind(event);
    s.offer({ event, bytes, seq: BigInt(seq), cls: classOfKind(kind), offeredMs: Date.now() } satisfies SinkEvent);
  }
}

const records = (got: Got[]) => got.flatMap((g) => g.req.resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords)));
const attr = (r: { attributes: { key: string; value: { stringValue?: string } }[] }, k: string) =>
  r.attributes.find((a) => a.key === k)?.value;

describe('otlp+http sink', () => {
  it('delivers every event once, gzip, protobuf, with resource and attributes', async () => {
    const rx = await receiver();
    const s = await sink(`otlp+http://127.0.0.1:${rx.port}?batch=500`);
    const N = 3000;
    offer(s, 1, N);
    await (s as unknown as { whenDelivered(): Promise<void> }).whenDelivered();
    const recs = records(rx.got);
    expect(recs).toHaveLength(N);
    const seqs = recs.map((r) => Number(attr(r, 'ctrwatch.seq')!.stringValue));
    expect(new Set(seqs).size).toBe(N);
    expect(Math.min(...seqs)).toBe(1);
    expect(Math.max(...seqs)).toBe(N);
    for (const g of rx.got) {
      expect(g.url).toBe('/v1/logs');
      expect(g.headers['content-type']).toBe('application/x-protobuf');
      expect(g.headers['content-encoding']).toBe('gzip');
      const res = Object.fromEntries(g.req.resourceLogs[0]!.resource.attributes.map((a) => [a.key, a.value.stringValue]));
      expect(res).toMatchObject({
        'service.name': 'ctrwatch',
        'host.name': 'node-a',
        'ctrwatch.version': '0.1.0',
        'ctrwatch.boot_id': 'boot-1',
      });
    }
    const det = recs.find((r) => attr(r, 'ctrwatch.seq')!.stringValue === '50')!;
    expect(det.severityNumber).toBe(17);
    expect(det.severityText).toBe('HIGH');
    expect(attr(det, 'ctrwatch.rule_id')!.stringValue).toBe('escape.host-ns-setns');
    expect(det.attributes.find((a) => a.key === 'ctrwatch.techniques')!.value.arrayValue!.values.map((v) => v.stringValue)).toEqual([
      'T1611',
    ]);
    expect(attr(det, 'container.id')!.stringValue).toBe('r1-50');
    expect(attr(det, 'container.image.name')!.stringValue).toBe('docker.io/library/nginx:1.27');
    expect(attr(det, 'container.runtime')!.stringValue).toBe('DOCKER');
    expect(attr(det, 'ctrwatch.node')!.stringValue).toBe('node-a');
    const body = JSON.parse(det.body.stringValue) as Record<string, unknown>;
    expect(body).toMatchObject({ seq: '50', node: 'node-a', detection: { ruleId: 'escape.host-ns-setns' } });
    expect(det.timeUnixNano).toBe(body.timeUnixNano);
    const st = s.stats();
    expect(st).toMatchObject({ offered: N, delivered: N, dropped: {} });
  });

  it('honours 503 with Retry-After: 1, then delivers', async () => {
    const rx = await receiver((n) => (n === 0 ? { status: 503, headers: { 'retry-after': '1' } } : undefined));
    const s = await sink(`otlp+http://127.0.0.1:${rx.port}`);
    offer(s, 1, 10);
    await (s as unknown as { whenDelivered(): Promise<void> }).whenDelivered();
    expect(rx.times.length).toBe(2);
    expect(rx.times[1]! - rx.times[0]!).toBeGreaterThanOrEqual(950);
    expect(records(rx.got)).toHaveLength(10);
    expect(s.stats()).toMatchObject({ delivered: 10, dropped: {}, failures: { http_503: 1 } });
  });

  it('a 400 is permanent for the batch: counted, not retried, later batches go on', async () => {
    const rx = await receiver((n) => (n === 0 ? { status: 400, body: Buffer.from('bad request') } : undefined));
    const s = await sink(`otlp+http://127.0.0.1:${rx.port}?batch=10`);
    offer(s, 1, 10);
    await (s as unknown as { whenDelivered(): Promise<void> }).whenDelivered();
    offer(s, 11, 20);
    await (s as unknown as { whenDelivered(): Promise<void> }).whenDelivered();
    expect(rx.requests()).toBe(2);
    expect(records(rx.got)).toHaveLength(10);
    const st = s.stats();
    expect(st.failures.http_400).toBe(1);
    expect(st.dropped.write_error).toEqual({ record: 10 });
    expect(st.spooledEvents).toBe(0);
  });

  for (const status of [401, 403]) {
    it(`a ${status} keeps the batch spooled and counts it; sent when the collector takes it again`, async () => {
      const rx = await receiver((n) => (n < 3 ? { status, body: Buffer.from('who are you') } : undefined));
      const s = await sink(`otlp+http://127.0.0.1:${rx.port}?batch=10`);
      offer(s, 1, 10);
      await (s as unknown as { whenDelivered(): Promise<void> }).whenDelivered();
      expect(records(rx.got).map((r) => Number(attr(r, 'ctrwatch.seq')!.stringValue))).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
      expect(s.stats()).toMatchObject({ delivered: 10, dropped: {}, spooledEvents: 0, failures: { [`http_${status}`]: 3 } });
    });
  }

  it('a 413 halves the requests until they pass: nothing lost, nothing sent twice', async () => {
    const rx = await receiver((_n, recs) => (recs > 6 ? { status: 413, body: Buffer.from('too large') } : undefined));
    const s = await sink(`otlp+http://127.0.0.1:${rx.port}?batch=50`);
    offer(s, 1, 50);
    await (s as unknown as { whenDelivered(): Promise<void> }).whenDelivered();
    const seqs = records(rx.got).map((r) => Number(attr(r, 'ctrwatch.seq')!.stringValue));
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(Math.max(...rx.got.map((g) => records([g]).length))).toBeLessThanOrEqual(6);
    const st = s.stats();
    expect(st).toMatchObject({ delivered: 50, dropped: {}, spooledEvents: 0 });
    expect(st.failures.http_413).toBeGreaterThan(0);
  });

  it('a 413 for one event alone: that event is lost, counted too_large by class; the others go', async () => {
    const rx = await receiver((_n, recs) => (recs > 1 ? { status: 413 } : undefined));
    const s = await sink(`otlp+http://127.0.0.1:${rx.port}?batch=4`);
    offer(s, 1, 4);
    await (s as unknown as { whenDelivered(): Promise<void> }).whenDelivered();
    expect(records(rx.got)).toHaveLength(4);
    const rx2 = await receiver(() => ({ status: 413 }));
    const s2 = await sink(`otlp+http://127.0.0.1:${rx2.port}?batch=4`);
    offer(s2, 1, 3);
    await (s2 as unknown as { whenDelivered(): Promise<void> }).whenDelivered();
    expect(s2.stats()).toMatchObject({ delivered: 0, dropped: { too_large: { record: 3 } }, spooledEvents: 0 });
  });

  it('partial success: rejected_log_records is counted', async () => {
    // ExportLogsServiceResponse{ partial_success(1){ rejected_log_records(1) = 7, error_message(2) = "x" } }
    const body = Buffer.from([0x0a, 0x05, 0x08, 0x07, 0x12, 0x01, 0x78]);
    const rx = await receiver(() => ({ status: 200, headers: { 'content-type': 'application/x-protobuf' }, body }));
    const s = await sink(`otlp+http://127.0.0.1:${rx.port}`);
    offer(s, 1, 20);
    await (s as unknown as { whenDelivered(): Promise<void> }).whenDelivered();
    expect(s.stats()).toMatchObject({ delivered: 20, dropped: {}, failures: { rejected_records: 7 } });
  });

  it('receiver down at first: spooled, then delivered when it comes up', async () => {
    const probe = await receiver();
    const port = probe.port;
    await new Promise((r) => {
      servers[0]!.close(r);
    });
    servers.splice(0);
    const s = await sink(`otlp+http://127.0.0.1:${port}`);
    offer(s, 1, 100);
    await new Promise((r) => setTimeout(r, 300));
    expect(s.stats().failures.http_error).toBeGreaterThan(0);
    const got: Got[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        got.push({
          headers: req.headers,
          url: req.url ?? '',
          req: Req.toObject(Req.decode(zlib.gunzipSync(Buffer.concat(chunks))), { longs: String }) as Got['req'],
        });
        res.writeHead(200).end();
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    await (s as unknown as { whenDelivered(): Promise<void> }).whenDelivered();
    expect(records(got)).toHaveLength(100);
  });

  it('bad URLs give clear errors; other schemes are not fleet outputs', () => {
    expect(parseOutput('grpc://127.0.0.1:1').kind).toBe('grpc');
    expect(parseOutput('stdout').kind).toBe('stdout');
    expect(() => parseOutput('otlp+http://127.0.0.1', { insecurePlaintext: true })).toThrow(/no port/);
    expect(() => parseOutput('otlp+http://', { insecurePlaintext: true })).toThrow(/no host/);
    expect(() => parseOutput('otlp+http://127.0.0.1:4318?batch=0', { insecurePlaintext: true })).toThrow(/batch must be/);
    expect(() => parseOutput('otlp+http://127.0.0.1:4318?foo=1', { insecurePlaintext: true })).toThrow(/unknown option 'foo'/);
    expect(() => parseOutput('otlp+http://u:p@127.0.0.1:4318', { insecurePlaintext: true })).toThrow(/no user or password/);
    expect(() => parseOutput('otlp+grpc://127.0.0.1:4317', { insecurePlaintext: true })).toThrow(OutputSpecError);
    expect(() => parseOutput('otlp+http://127.0.0.1:99999', { insecurePlaintext: true })).toThrow(/not HOST:PORT/);
    expect(parseOutput('otlp+https://collector.example', { insecurePlaintext: true })).toMatchObject({
      kind: 'otlp',
      tls: true,
      port: 443,
      path: '/v1/logs',
      compress: true,
    });
    expect(parseOutput('otlp+http://10.0.0.1:4318/otlp/v1/logs?compress=none', { insecurePlaintext: true })).toMatchObject({
      path: '/otlp/v1/logs',
      compress: false,
    });
    expect(() => parseOutput('nats://127.0.0.1:4222', { insecurePlaintext: true })).toThrow(/no subject/);
    expect(() => parseOutput('nats://127.0.0.1:4222/a.*', { insecurePlaintext: true })).toThrow(/not a NATS subject/);
    expect(
      parseOutput('nats://127.0.0.1:4222,127.0.0.1:4223/ctrwatch.events?stream=CTRWATCH&replicas=3', { insecurePlaintext: true }),
    ).toMatchObject({
      kind: 'nats',
      servers: ['127.0.0.1:4222', '127.0.0.1:4223'],
      subject: 'ctrwatch.events',
      stream: 'CTRWATCH',
      replicas: 3,
    });
  });
});
