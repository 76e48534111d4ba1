// otlp+http://HOST:PORT[/PREFIX], otlp+https://… — OTLP/HTTP logs to an OpenTelemetry
// Collector (or anything speaking OTLP/HTTP protobuf). Each spooled batch becomes one POST
// PREFIX/v1/logs: an ExportLogsServiceRequest, Content-Type application/x-protobuf,
// Content-Encoding gzip (unless ?compress=none).
//
// One LogRecord an event:
//   body            the event as its proto3 canonical JSON string (schema.toJsonLine's form)
//   time_unix_nano  the event's; observed_time_unix_nano when it was offered
//   severity        detections: INFO→INFO(9) LOW→WARN(13) MEDIUM→WARN2(14) HIGH→ERROR(17)
//                   CRITICAL→FATAL(21); other events INFO(9), sensorStats DEBUG(5)
//   attributes      ctrwatch.event.kind, ctrwatch.seq, ctrwatch.node, container.id,
//                   container.image.name, container.runtime, ctrwatch.rule_id,
//                   ctrwatch.techniques (array), ctrwatch.severity — those that apply
// Resource: service.name=ctrwatch, host.name=node, service.instance.id=instance,
// ctrwatch.version, ctrwatch.boot_id (one request a sensor run: a batch never mixes runs).
//
// Delivery (spooled-sink.ts): at least once through the spool. 429/502/503/504 are retried
// after Retry-After (seconds or an HTTP date) or else backoff with jitter; connection errors,
// timeouts, other 5xx, 401 and 403 (credentials the collector's owner can fix) and 408 are
// retried with backoff, the batch kept in the spool and each refusal counted in
// failures.http_<status>. A 413 splits the request in halves, and later requests stay at the
// size that passed; one event still refused alone is lost, counted as a too_large drop of its
// class and logged. Other 4xx are permanent for the rest of the batch (counted as write_error
// drops, logged once). A partial success is counted in failures.rejected_records.

import * as http from 'node:http';
import * as https from 'node:https';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { Out } from '../../proto/codec-encode';
import type { EventCodec } from '../../proto/codec';
import { loadOtlpProtos, type OtlpProtos } from '../../proto/otlp-proto';
import type { FsyncPolicy, SpoolBatch, SpoolRecord } from '../spool/spool';
import type { EventClass } from '../types';
import { SpooledSink, type SendResult, type SpooledSinkOptions } from '../spool/spooled-sink';

const gzip = promisify(zlib.gzip);

export interface OtlpSpec {
  kind: 'otlp';
  url: string;
  tls: boolean;
  host: string;
  port: number;
  /** Full path of the logs endpoint (…/v1/logs). */
  path: string;
  compress: boolean;
  batchEvents: number;
  fsync: FsyncPolicy;
}

export interface OtlpSinkOptions extends Omit<SpooledSinkOptions, 'name'> {
  spec: OtlpSpec;
  codec: EventCodec;
  version: string;
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>;
  /** CA etc. for otlp+https. */
  tlsOptions?: https.AgentOptions;
  requestTimeoutMs?: number;
}

const SEVERITY: Record<string, number> = { SEVERITY_UNSPECIFIED: 9, INFO: 9, LOW: 13, MEDIUM: 14, HIGH: 17, CRITICAL: 21 };
const KINDS = [
  'detection',
  'containerExec',
  'containerCreated',
  'containerStarted',
  'containerExited',
  'sensorReady',
  'sensorStats',
] as const;
const RETRY_STATUS = new Set([429, 502, 503, 504]);
/** Refusals the collector's owner can lift (credentials, a slow request): kept in the spool. */
const HOLD_STATUS = new Set([401, 403, 408]);

/** Opens a KeyValue{key, value: AnyValue} as field `field`, up to the AnyValue's body: returns the two forks to close, outer first. */
function openKv(o: Out, field: number, key: string): [number, number] {
  o.varint((field << 3) | 2);
  const kv = o.fork();
  o.varint(10);
  o.string(key);
  o.varint(18);
  return [kv, o.fork()];
}

/** A KeyValue{key, value: AnyValue{string_value}} as field `field` of the message being written. */
function kvStr(o: Out, field: number, key: string, value: string): void {
  const [kv, v] = openKv(o, field, key);
  o.varint(10);
  o.string(value);
  o.ldelim(v);
  o.ldelim(kv);
}

/** A KeyValue{key, value: AnyValue{array_value: strings}} as field `field`. */
function kvStrings(o: Out, field: number, key: string, values: readonly string[]): void {
  const [kv, v] = openKv(o, field, key);
  o.varint(42); // AnyValue.array_value = 5
  const arr = o.fork();
  for (const x of values) {
    o.varint(10);
    const one = o.fork();
    o.varint(10);
    o.string(x);
    o.ldelim(one);
  }
  o.ldelim(arr);
  o.ldelim(v);
  o.ldelim(kv);
}

/** Retry-After: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(v: string | string[] | undefined, now = Date.now()): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  if (/^\s*\d+\s*$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

type PostResult = SendResult | { kind: 'too_large'; detail: string };

export class OtlpSink extends SpooledSink {
  private readonly protos: OtlpProtos;
  private readonly agent: http.Agent;
  /** Most log records a request, learnt from 413 replies. */
  private maxRecords = Infinity;
  /** Of a batch being sent in parts: records at its start already taken, and those lost. */
  private readonly progress = new WeakMap<SpoolBatch, { done: number; rejected: number; tooLarge: EventClass[] }>();

  private constructor(private readonly o: OtlpSinkOptions) {
    super({ ...o, name: o.spec.url, batchEvents: o.batchEvents ?? o.spec.batchEvents, fsync: o.fsync ?? o.spec.fsync });
    this.protos = loadOtlpProtos();
    this.agent = o.spec.tls
      ? new https.Agent({ keepAlive: true, maxSockets: 2, ...o.tlsOptions })
      : new http.Agent({ keepAlive: true, maxSockets: 2 });
  }

  static async create(o: OtlpSinkOptions): Promise<OtlpSink> {
    const s = new OtlpSink(o);
    await s.start();
    return s;
  }

  /**
   * The ExportLogsServiceRequest of a batch, written field by field into one growing buffer
   * (field numbers of the official logs.proto / common.proto; the tests decode it with the
   * official protos). protobufjs's Writer, used before, allocated an object for every value
   * written and cost the sender more than the rest of the request.
   */
  encodeRequest(batch: Pick<SpoolBatch, 'id' | 'records'>): Uint8Array {
    const o = new Out();
    let size = 0;
    for (const r of batch.records) size += r.bytes.length;
    o.ensure(size * 3 + 1024);
    o.varint(10); // ExportLogsServiceRequest.resource_logs = 1
    const rl = o.fork();
    o.varint(10); // ResourceLogs.resource = 1
    const res = o.fork();
    kvStr(o, 1, 'service.name', 'ctrwatch');
    kvStr(o, 1, 'host.name', batch.id.node);
    kvStr(o, 1, 'service.instance.id', batch.id.instanceId);
    kvStr(o, 1, 'ctrwatch.version', this.o.version);
    kvStr(o, 1, 'ctrwatch.boot_id', batch.id.bootId);
    o.ldelim(res);
    o.varint(18); // ResourceLogs.scope_logs = 2
    const sl = o.fork();
    o.varint(10); // scope
    const scope = o.fork();
    o.varint(10);
    o.string('ctrwatch');
    o.varint(18);
    o.string(this.o.version);
    o.ldelim(scope);
    for (const r of batch.records) this.writeRecord(o, r, batch.id.node);
    o.ldelim(sl);
    o.ldelim(rl);
    return o.buf.subarray(0, o.pos);
  }

  /** One LogRecord (ScopeLogs.log_records = 2) of an event. */
  private writeRecord(o: Out, r: SpoolRecord, node: string): void {
    const ev = this.o.codec.decode(r.bytes) as Record<string, unknown>;
    let kind: string | undefined;
    for (const k of KINDS)
      if (ev[k] !== undefined) {
        kind = k;
        break;
      }
    const body = kind ? (ev[kind] as Record<string, unknown>) : {};
    let severityNumber = kind === 'sensorStats' ? 5 : 9;
    let severityText = kind === 'sensorStats' ? 'DEBUG' : 'INFO';
    const sev = kind === 'detection' ? ((body.severity as string | undefined) ?? 'SEVERITY_UNSPECIFIED') : undefined;
    if (sev) {
      severityNumber = SEVERITY[sev] ?? 9;
      severityText = sev;
    }
    o.varint(18); // ScopeLogs.log_records = 2
    const lr = o.fork();
    o.varint(9); // time_unix_nano = 1
    if (typeof ev.timeUnixNano === 'string') {
      const t = BigInt(ev.timeUnixNano);
      o.fixed64(Number(t & 0xffffffffn), Number(t >> 32n));
    } else o.fixed64(0, 0);
    o.varint(16); // severity_number = 2
    o.varint(severityNumber);
    o.varint(26); // severity_text = 3
    o.string(severityText);
    o.varint(42); // body = 5
    const b = o.fork();
    o.varint(10); // string_value
    o.string(JSON.stringify(ev));
    o.ldelim(b);
    kvStr(o, 6, 'ctrwatch.seq', String(r.seq));
    kvStr(o, 6, 'ctrwatch.node', String(ev.node ?? node));
    if (kind) kvStr(o, 6, 'ctrwatch.event.kind', kind);
    const c = body.container as Record<string, unknown> | undefined;
    if (c) {
      if (c.id) kvStr(o, 6, 'container.id', String(c.id));
      if (c.image) kvStr(o, 6, 'container.image.name', String(c.image));
      if (c.runtime) kvStr(o, 6, 'container.runtime', String(c.runtime));
    }
    if (sev) {
      if (body.ruleId) kvStr(o, 6, 'ctrwatch.rule_id', String(body.ruleId));
      const tech = body.techniques as string[] | undefined;
      if (tech?.length) kvStrings(o, 6, 'ctrwatch.techniques', tech);
      kvStr(o, 6, 'ctrwatch.severity', sev);
    }
    // observed_time_unix_nano = 11, as protobufjs wrote a number: low and high 32 bits of it.
    const obs = Math.round(r.offeredMs) * 1e6;
    const lo = obs >>> 0;
    o.varint(89);
    o.fixed64(lo, ((obs - lo) / 4294967296) >>> 0);
    o.ldelim(lr);
  }

  /**
   * A batch in requests of at most maxRecords log records. A part taken stays taken when a later
   * part must be retried (the retry sends only the rest).
   */
  protected async send(batch: SpoolBatch): Promise<SendResult> {
    let p = this.progress.get(batch);
    if (!p) this.progress.set(batch, (p = { done: 0, rejected: 0, tooLarge: [] }));
    while (p.done < batch.records.length) {
      const n = Math.min(this.maxRecords, batch.records.length - p.done);
      const part = batch.records.slice(p.done, p.done + n);
      const r = await this.post(batch.id, part);
      if (r.kind === 'ok') {
        p.done += n;
        p.rejected += r.rejected ?? 0;
      } else if (r.kind === 'too_large') {
        this.counters.failures.http_413 = (this.counters.failures.http_413 ?? 0) + 1;
        if (n > 1) {
          this.maxRecords = Math.ceil(n / 2);
          this.log.warn(
            { records: n, now: this.maxRecords, detail: r.detail },
            'the collector refused a request as too large: sending smaller ones',
          );
        } else {
          p.tooLarge.push(part[0]!.seg.lane);
          p.done += 1;
          this.log.error(
            { seq: String(part[0]!.seq), bytes: part[0]!.bytes.length, detail: r.detail },
            'the collector refused one event alone as too large: it is lost (counted as too_large)',
          );
        }
      } else if (r.kind === 'permanent') {
        this.progress.delete(batch);
        return { ...r, settled: p.done, tooLarge: p.tooLarge };
      } else return r;
    }
    this.progress.delete(batch);
    return { kind: 'ok', rejected: p.rejected, tooLarge: p.tooLarge };
  }

  // eslint-disable-next-line max-lines-per-function -- one HTTP exchange: its outcomes (ok, partial, retry, permanent) read in one place
  private async post(id: SpoolBatch['id'], records: SpoolRecord[]): Promise<PostResult> {
    const raw = this.encodeRequest({ id, records });
    // Level 1: a batch of events repeats itself so much that the fastest level already takes it to
    // a few percent of its size; the default level (6) cost the sender several times the CPU.
    const body = this.o.spec.compress ? await gzip(raw, { level: 1 }) : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const headers: http.OutgoingHttpHeaders = {
      ...this.o.headers,
      'content-type': 'application/x-protobuf',
      'content-length': body.length,
    };
    if (this.o.spec.compress) headers['content-encoding'] = 'gzip';
    const res = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer } | Error>((resolve) => {
      const mod = this.o.spec.tls ? https : http;
      const req = mod.request(
        {
          host: this.o.spec.host,
          port: this.o.spec.port,
          path: this.o.spec.path,
          method: 'POST',
          headers,
          agent: this.agent,
          timeout: this.o.requestTimeoutMs ?? 10_000,
        },
        (r) => {
          const chunks: Buffer[] = [];
          let size = 0;
          r.on('data', (d: Buffer) => {
            size += d.length;
            if (size <= 1 << 20) chunks.push(d);
          });
          r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks) }));
          r.on('error', resolve);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.o.requestTimeoutMs ?? 10_000} ms`)));
      req.on('error', resolve);
      req.end(body);
    });
    if (res instanceof Error) return { kind: 'retry', reason: 'http_error', detail: res.message };
    const { status } = res;
    if (status >= 200 && status < 300) {
      let rejected = 0;
      if (res.body.length && String(res.headers['content-type'] ?? '').includes('protobuf')) {
        try {
          const r = this.protos.ExportLogsServiceResponse.toObject(this.protos.ExportLogsServiceResponse.decode(res.body), {
            longs: Number,
          }) as { partialSuccess?: { rejectedLogRecords?: number; errorMessage?: string } };
          rejected = r.partialSuccess?.rejectedLogRecords ?? 0;
          if (rejected)
            this.log.warn(
              { rejected, message: r.partialSuccess?.errorMessage },
              'the collector rejected some log records (partial success)',
            );
        } catch (err) {
          this.counters.failures.bad_response = (this.counters.failures.bad_response ?? 0) + 1;
        }
      }
      return { kind: 'ok', rejected };
    }
    const detail = `HTTP ${status}: ${res.body
      .subarray(0, 200)
      .toString('utf8')
      .replace(/[^\x20-\x7e]/g, '?')}`;
    if (RETRY_STATUS.has(status))
      return { kind: 'retry', reason: `http_${status}`, detail, afterMs: parseRetryAfter(res.headers['retry-after']) };
    if (status === 413) return { kind: 'too_large', detail };
    if (HOLD_STATUS.has(status)) return { kind: 'retry', reason: `http_${status}`, detail };
    if (status >= 400 && status < 500) return { kind: 'permanent', reason: `http_${status}`, detail };
    return { kind: 'retry', reason: `http_${status}`, detail };
  }

  protected async release(): Promise<void> {
    this.agent.destroy();
  }
}
