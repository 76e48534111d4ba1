// --output URLs, the one grammar: parsed and checked before anything starts, with errors that
// name the URL.
//   stdout                      JSON lines on stdout (the default)
//   file:PATH[?max-mb=N&keep=N] length-delimited protobuf, rotated by size
//   grpc://HOST:PORT[?…]        a collector, clear text (loopback only unless --insecure-plaintext)
//   grpcs://HOST:PORT[?…]       a collector over TLS
//   otlp+http://HOST:PORT[/PREFIX][?batch=N&compress=gzip|none&fsync=…]   OTLP/HTTP logs (POST PREFIX/v1/logs)
//   otlp+https://…                                                         the same over TLS
//   nats://HOST:PORT[,HOST:PORT…]/SUBJECT[?stream=NAME&replicas=N&batch=N&fsync=…]  JetStream
// grpc options: batch=N (events a batch), compress=gzip, fsync=interval|always|never (spool).

import * as path from 'node:path';
import { isLoopback } from '../proto/credentials';
import type { GrpcSpec } from './remote/grpc';
import type { NatsSpec } from './remote/nats';
import type { OtlpSpec } from './remote/otlp';
import { FSYNC_POLICIES, type FsyncPolicy } from './spool/spool';
import { OutputSpecError } from './types';

export { isLoopback };
export type { GrpcSpec, NatsSpec, OtlpSpec };

export type OutputSpec =
  | { kind: 'stdout'; url: string }
  | { kind: 'file'; url: string; path: string; maxBytes: number; keep: number }
  | GrpcSpec
  | OtlpSpec
  | NatsSpec;

/** The outputs that send over the network, through a spool. */
export type RemoteSpec = GrpcSpec | OtlpSpec | NatsSpec;

export interface ParseOutputsOptions {
  /** Allow grpc://, otlp+http:// or nats:// (clear text) to a host that is not loopback. */
  insecurePlaintext?: boolean;
}

function positive(url: string, params: URLSearchParams, key: string, dflt: number, max: number): number {
  const v = params.get(key);
  if (v === null) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max)
    throw new OutputSpecError(`--output ${url}: ${key} must be a whole number from 1 to ${max}, got '${v}'`);
  return Number(v);
}

function onlyKeys(url: string, params: URLSearchParams, allowed: string[]): void {
  for (const k of params.keys()) {
    if (!allowed.includes(k)) throw new OutputSpecError(`--output ${url}: unknown option '${k}' (known: ${allowed.join(', ') || 'none'})`);
  }
}

function fsyncOf(url: string, params: URLSearchParams): FsyncPolicy {
  const f = params.get('fsync') ?? 'interval';
  if (!(FSYNC_POLICIES as readonly string[]).includes(f))
    throw new OutputSpecError(`--output ${url}: fsync must be interval, always or never, got '${f}'`);
  return f as FsyncPolicy;
}

function compressOf(url: string, params: URLSearchParams, dflt: 'gzip' | 'none'): boolean {
  const compress = params.get('compress') ?? dflt;
  if (compress !== 'gzip' && compress !== 'none')
    throw new OutputSpecError(`--output ${url}: compress must be gzip or none, got '${compress}'`);
  return compress === 'gzip';
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

function parseFile(url: string): OutputSpec {
  const [raw = '', query = ''] = url.slice(5).split('?', 2);
  const p = raw.startsWith('//') ? raw.slice(2) : raw;
  if (!p) throw new OutputSpecError(`--output ${url}: no path (write file:/var/log/ctrwatch/events.pb)`);
  if (p.endsWith('/')) throw new OutputSpecError(`--output ${url}: the path names a directory, not a file`);
  const params = new URLSearchParams(query);
  onlyKeys(url, params, ['max-mb', 'keep']);
  return {
    kind: 'file',
    url,
    path: path.resolve(p),
    maxBytes: positive(url, params, 'max-mb', 256, 1 << 20) * 2 ** 20,
    keep: positive(url, params, 'keep', 5, 1000),
  };
}

function parseGrpc(url: string, scheme: string, rest: string): GrpcSpec {
  let u: URL;
  try {
    u = new URL(`http://${rest}`);
  } catch (err) {
    throw new OutputSpecError(`--output ${url}: not a URL (expected ${scheme}://HOST:PORT)`, { cause: err });
  }
  if (u.username || u.password) throw new OutputSpecError(`--output ${url}: no user or password in the URL (use --token-file)`);
  if (u.pathname !== '/' || u.hash) throw new OutputSpecError(`--output ${url}: no path after HOST:PORT`);
  if (!u.port) throw new OutputSpecError(`--output ${url}: no port (expected ${scheme}://HOST:PORT)`);
  const params = u.searchParams;
  onlyKeys(url, params, ['batch', 'compress', 'fsync']);
  const compress = params.get('compress') === null ? false : compressOf(url, params, 'none');
  const fsync = fsyncOf(url, params);
  const tls = scheme === 'grpcs';
  return {
    kind: 'grpc',
    url,
    host: u.hostname,
    port: Number(u.port),
    tls,
    batchEvents: positive(url, params, 'batch', 1000, 100_000),
    compress,
    fsync,
  };
}

/** Splits SCHEME://AUTHORITY/PATH?QUERY the way the otlp and nats URLs are written. */
function splitUrl(rest: string): { params: URLSearchParams; authority: string; pathPart: string } {
  const q = rest.indexOf('?');
  const params = new URLSearchParams(q >= 0 ? rest.slice(q + 1) : '');
  const beforeQuery = q >= 0 ? rest.slice(0, q) : rest;
  const slash = beforeQuery.indexOf('/');
  const authority = slash >= 0 ? beforeQuery.slice(0, slash) : beforeQuery;
  const pathPart = slash >= 0 ? beforeQuery.slice(slash) : '';
  return { params, authority, pathPart };
}

function parseOtlp(url: string, scheme: string, rest: string): OtlpSpec {
  const { params, authority, pathPart } = splitUrl(rest);
  onlyKeys(url, params, ['batch', 'compress', 'fsync']);
  const tls = scheme === 'otlp+https';
  const { host, port } = hostPort(url, authority, scheme, tls ? 443 : undefined);
  const compress = compressOf(url, params, 'gzip');
  let prefix = pathPart.replace(/\/+$/, '');
  if (prefix.endsWith('/v1/logs')) prefix = prefix.slice(0, -'/v1/logs'.length);
  if (/[#\s]/.test(prefix)) throw new OutputSpecError(`--output ${url}: bad path '${pathPart}'`);
  return {
    kind: 'otlp',
    url,
    tls,
    host,
    port,
    path: `${prefix}/v1/logs`,
    compress,
    batchEvents: positive(url, params, 'batch', 1000, 100_000),
    fsync: fsyncOf(url, params),
  };
}

function parseNats(url: string, rest: string): NatsSpec {
  const { params, authority, pathPart } = splitUrl(rest);
  onlyKeys(url, params, ['stream', 'replicas', 'batch', 'fsync']);
  const servers = authority.split(',').map((hp) => {
    const { host, port } = hostPort(url, hp, 'nats', 4222);
    return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  });
  const subject = decodeURIComponent(pathPart.replace(/^\//, ''));
  if (!subject) throw new OutputSpecError(`--output ${url}: no subject (expected nats://HOST:PORT/SUBJECT)`);
  if (!/^[^\s.*>]+(\.[^\s.*>]+)*$/.test(subject))
    throw new OutputSpecError(`--output ${url}: '${subject}' is not a NATS subject to publish to (no wildcards, spaces or empty tokens)`);
  const stream = params.get('stream') ?? undefined;
  if (stream !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(stream))
    throw new OutputSpecError(`--output ${url}: stream name must be letters, digits, _ or -, got '${stream}'`);
  return {
    kind: 'nats',
    url,
    servers,
    subject,
    stream,
    replicas: positive(url, params, 'replicas', 1, 5),
    batchEvents: positive(url, params, 'batch', 1000, 100_000),
    fsync: fsyncOf(url, params),
  };
}

/** The hosts a remote output sends to in clear text (none over TLS). */
function clearTextHosts(spec: RemoteSpec): string[] {
  if (spec.kind === 'nats') return spec.servers.map((s) => s.replace(/:\d+$/, ''));
  return spec.tls ? [] : [spec.host];
}

function parseRemote(url: string): RemoteSpec | undefined {
  const m = /^(grpcs?|otlp\+https?|nats):\/\/(.*)$/i.exec(url);
  if (!m) {
    if (/^(otlp|otlp\+grpc|nats\+\w+|tls|jetstream)(\+\w+)?:/i.test(url))
      throw new OutputSpecError(`--output ${url}: unsupported scheme (expected otlp+http://, otlp+https:// or nats://)`);
    return undefined;
  }
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  if (scheme.startsWith('grpc')) return parseGrpc(url, scheme, rest);
  if (!rest) throw new OutputSpecError(`--output ${url}: no host (expected ${scheme}://HOST:PORT)`);
  return scheme === 'nats' ? parseNats(url, rest) : parseOtlp(url, scheme, rest);
}

/** Parse and check one --output URL. Throws OutputSpecError naming the URL and why. */
export function parseOutput(url: string, o: ParseOutputsOptions = {}): OutputSpec {
  if (url === 'stdout' || url === '-') return { kind: 'stdout', url: 'stdout' };
  if (url.startsWith('file:')) return parseFile(url);
  const spec = parseRemote(url);
  if (!spec)
    throw new OutputSpecError(
      `--output ${url}: unknown output (expected stdout, file:PATH, grpc://HOST:PORT, grpcs://HOST:PORT, otlp+http(s)://HOST:PORT or nats://HOST:PORT/SUBJECT)`,
    );
  if (!o.insecurePlaintext && clearTextHosts(spec).some((h) => !isLoopback(h))) {
    const use = spec.kind === 'grpc' ? 'grpcs:// (with --tls-ca)' : 'otlp+https://';
    throw new OutputSpecError(`--output ${url}: events would cross the network in clear text; use ${use} or pass --insecure-plaintext`);
  }
  return spec;
}

function identityKey(s: OutputSpec): string {
  if (s.kind === 'file') return `file:${s.path}`;
  if (s.kind === 'grpc') return `grpc:${s.host}:${s.port}`;
  return s.kind === 'stdout' ? 'stdout' : `${s.kind}:${s.url}`;
}

/** Parse and check --output URLs (none means stdout). Throws OutputSpecError naming the bad URL and why. */
export function parseOutputs(urls: readonly string[], o: ParseOutputsOptions = {}): OutputSpec[] {
  const specs = (urls.length ? urls : ['stdout']).map((u) => parseOutput(u.trim(), o));
  const seen = new Set<string>();
  for (const s of specs) {
    const key = identityKey(s);
    if (seen.has(key)) throw new OutputSpecError(`--output ${s.url}: given twice`);
    seen.add(key);
  }
  return specs;
}
