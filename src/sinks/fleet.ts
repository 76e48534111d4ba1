// Fleet outputs on existing engines, for --output:
//   otlp+http://HOST:PORT[/PREFIX][?batch=N&compress=gzip|none&fsync=…]   OTLP/HTTP logs (POST PREFIX/v1/logs)
//   otlp+https://…                                                         the same over TLS
//   nats://HOST:PORT[,HOST:PORT…]/SUBJECT[?stream=NAME&replicas=N&batch=N&fsync=…]  JetStream
// parseFleetOutput returns undefined for any other scheme, so the caller can fall back to
// parseOutputs; a fleet URL that is wrong throws OutputSpecError naming the URL and why.

import * as path from 'node:path';
import type { Logger } from 'pino';
import type { EventCodec } from './codec';
import { NatsSink, type NatsSpec } from './nats';
import { OtlpSink, type OtlpSpec } from './otlp';
import type { SpoolIdentity } from './spool';
import { OutputSpecError, type Sink } from './types';

import { onlyKeys, positive } from './url-params';

export type FleetSpec = OtlpSpec | NatsSpec;
export type { OtlpSpec, NatsSpec };



function fsyncOf(url: string, params: URLSearchParams): 'interval' | 'always' | 'never' {
  const f = params.get('fsync') ?? 'interval';
  if (f !== 'interval' && f !== 'always' && f !== 'never') throw new OutputSpecError(`--output ${url}: fsync must be interval, always or never, got '${f}'`);
  return f;
}

function hostPort(url: string, hp: string, scheme: string, dfltPort?: number): { host: string; port: number } {
  let u: URL;
  try {
    u = new URL(`http://${hp}`);
  } catch (err) {
    throw new OutputSpecError(`--output ${url}: '${hp}' is not HOST:PORT`, { cause: err });
  }
  if (u.username || u.password) throw new OutputSpecError(`--output ${url}: no user or password in the URL`);
  if (!u.hostname) throw new OutputSpecError(`--output ${url}: no host (expected ${scheme}://HOST:PORT)`);
  const port = u.port ? Number(u.port) : dfltPort;
  if (!port) throw new OutputSpecError(`--output ${url}: no port (expected ${scheme}://HOST:PORT)`);
  if (u.pathname !== '/' || u.search || u.hash) throw new OutputSpecError(`--output ${url}: '${hp}' is not HOST:PORT`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port };
}

export function parseFleetOutput(url: string): FleetSpec | undefined {
  const m = /^(otlp\+https?|nats):\/\/(.*)$/i.exec(url.trim());
  if (!m) {
    if (/^(otlp|otlp\+grpc|nats\+\w+|tls|jetstream)(\+\w+)?:/i.test(url)) throw new OutputSpecError(`--output ${url}: unsupported scheme (expected otlp+http://, otlp+https:// or nats://)`);
    return undefined;
  }
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  if (!rest) throw new OutputSpecError(`--output ${url}: no host (expected ${scheme}://HOST:PORT)`);
  const q = rest.indexOf('?');
  const params = new URLSearchParams(q >= 0 ? rest.slice(q + 1) : '');
  const beforeQuery = q >= 0 ? rest.slice(0, q) : rest;
  const slash = beforeQuery.indexOf('/');
  const authority = slash >= 0 ? beforeQuery.slice(0, slash) : beforeQuery;
  const pathPart = slash >= 0 ? beforeQuery.slice(slash) : '';
  if (scheme.startsWith('otlp')) {
    onlyKeys(url, params, ['batch', 'compress', 'fsync']);
    const tls = scheme === 'otlp+https';
    const { host, port } = hostPort(url, authority, scheme, tls ? 443 : undefined);
    const compress = params.get('compress') ?? 'gzip';
    if (compress !== 'gzip' && compress !== 'none') throw new OutputSpecError(`--output ${url}: compress must be gzip or none, got '${compress}'`);
    let prefix = pathPart.replace(/\/+$/, '');
    if (prefix.endsWith('/v1/logs')) prefix = prefix.slice(0, -'/v1/logs'.length);
    if (/[#\s]/.test(prefix)) throw new OutputSpecError(`--output ${url}: bad path '${pathPart}'`);
    return { kind: 'otlp', url, tls, host, port, path: `${prefix}/v1/logs`, compress: compress === 'gzip', batchEvents: positive(url, params, 'batch', 1000, 100_000), fsync: fsyncOf(url, params) };
  }
  onlyKeys(url, params, ['stream', 'replicas', 'batch', 'fsync']);
  const servers = authority.split(',').map((hp) => {
    const { host, port } = hostPort(url, hp, 'nats', 4222);
    return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  });
  const subject = decodeURIComponent(pathPart.replace(/^\//, ''));
  if (!subject) throw new OutputSpecError(`--output ${url}: no subject (expected nats://HOST:PORT/SUBJECT)`);
  if (!/^[^\s.*>]+(\.[^\s.*>]+)*$/.test(subject)) throw new OutputSpecError(`--output ${url}: '${subject}' is not a NATS subject to publish to (no wildcards, spaces or empty tokens)`);
  const stream = params.get('stream') ?? undefined;
  if (stream !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(stream)) throw new OutputSpecError(`--output ${url}: stream name must be letters, digits, _ or -, got '${stream}'`);
  return { kind: 'nats', url, servers, subject, stream, replicas: positive(url, params, 'replicas', 1, 5), batchEvents: positive(url, params, 'batch', 1000, 100_000), fsync: fsyncOf(url, params) };
}

export interface CreateFleetSinkOptions {
  logger: Logger;
  /** The event codec (OTLP decodes each event to its canonical JSON for the log body). */
  codec: EventCodec;
  node: string;
  bootId: string;
  instanceId: string;
  /** Parent spool directory; the sink uses a subdirectory named after the URL. */
  spoolDir: string;
  spoolMaxBytes?: number;
  /** ctrwatch.version resource attribute. */
  version: string;
  /** OTLP: extra HTTP headers (authorization…). NATS: token. */
  headers?: Record<string, string>;
  token?: string;
  /** Tuning (tests, benches). */
  tuning?: { backoffInitialMs?: number; backoffMaxMs?: number; closeTimeoutMs?: number; queueMaxEvents?: number; queueMaxBytes?: number; batchEvents?: number; maxInflight?: number; requestTimeoutMs?: number; ackTimeoutMs?: number; segmentBytes?: number };
}

export function fleetSpoolName(spec: FleetSpec): string {
  const key = spec.kind === 'otlp' ? `otlp_${spec.host}_${spec.port}` : `nats_${spec.servers[0]}_${spec.subject}`;
  return key.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** Open the sink (its spool first). Resolves to a Sink; whenDelivered() is there for tests. */
export async function createFleetSink(spec: FleetSpec, o: CreateFleetSinkOptions): Promise<Sink & { whenDelivered(): Promise<void> }> {
  const identity: SpoolIdentity = { node: o.node, bootId: o.bootId, instanceId: o.instanceId };
  const common = { logger: o.logger, identity, spoolDir: path.join(o.spoolDir, fleetSpoolName(spec)), spoolMaxBytes: o.spoolMaxBytes, ...o.tuning };
  if (spec.kind === 'otlp') return OtlpSink.create({ ...common, spec, codec: o.codec, version: o.version, headers: o.headers });
  return NatsSink.create({ ...common, spec, token: o.token });
}
