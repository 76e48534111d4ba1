// --output URLs: parsed and checked before anything starts, with errors that name the URL.
//   stdout                      JSON lines on stdout (the default)
//   file:PATH[?max-mb=N&keep=N] length-delimited protobuf, rotated by size
//   grpc://HOST:PORT[?…]        a collector, clear text (loopback only unless --insecure-plaintext)
//   grpcs://HOST:PORT[?…]       a collector over TLS
// grpc options: batch=N (events a batch), compress=gzip, fsync=interval|always|never (spool).

import { isIP } from 'node:net';
import * as path from 'node:path';
import { OutputSpecError } from './types';

import { parseFleetOutput, type FleetSpec } from './fleet';
import { onlyKeys, positive } from './url-params';

export type FsyncPolicy = 'interval' | 'always' | 'never';

export type OutputSpec =
  | { kind: 'stdout'; url: string }
  | { kind: 'file'; url: string; path: string; maxBytes: number; keep: number }
  | { kind: 'grpc'; url: string; host: string; port: number; tls: boolean; batchEvents: number; compress: boolean; fsync: FsyncPolicy }
  | { kind: 'fleet'; url: string; fleet: FleetSpec };

export interface ParseOutputsOptions {
  /** Allow grpc:// (clear text) to a host that is not loopback. */
  insecurePlaintext?: boolean;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}



function parseOne(url: string, o: ParseOutputsOptions): OutputSpec {
  if (url === 'stdout' || url === '-') return { kind: 'stdout', url: 'stdout' };
  if (url.startsWith('file:')) {
    const [raw = '', query = ''] = url.slice(5).split('?', 2);
    const p = raw.startsWith('//') ? raw.slice(2) : raw;
    if (!p) throw new OutputSpecError(`--output ${url}: no path (write file:/var/log/ctrwatch/events.pb)`);
    if (p.endsWith('/')) throw new OutputSpecError(`--output ${url}: the path names a directory, not a file`);
    const params = new URLSearchParams(query);
    onlyKeys(url, params, ['max-mb', 'keep']);
    return { kind: 'file', url, path: path.resolve(p), maxBytes: positive(url, params, 'max-mb', 256, 1 << 20) * 2 ** 20, keep: positive(url, params, 'keep', 5, 1000) };
  }
  const fleet = parseFleetOutput(url);
  if (fleet) {
    const hosts = fleet.kind === 'otlp' ? (fleet.tls ? [] : [fleet.host]) : fleet.servers.map((s) => s.replace(/:\d+$/, ''));
    if (!o.insecurePlaintext && hosts.some((h) => !isLoopback(h))) {
      throw new OutputSpecError(`--output ${url}: events would cross the network in clear text; use otlp+https:// or pass --insecure-plaintext`);
    }
    return { kind: 'fleet', url, fleet };
  }
  const m = /^(grpcs?):\/\/(.*)$/.exec(url);
  if (!m) throw new OutputSpecError(`--output ${url}: unknown output (expected stdout, file:PATH, grpc://HOST:PORT, grpcs://HOST:PORT, otlp+http(s)://HOST:PORT or nats://HOST:PORT/SUBJECT)`);
  let u: URL;
  try {
    u = new URL(`http://${m[2]}`);
  } catch (err) {
    throw new OutputSpecError(`--output ${url}: not a URL (expected ${m[1]}://HOST:PORT)`, { cause: err });
  }
  const tls = m[1] === 'grpcs';
  if (u.username || u.password) throw new OutputSpecError(`--output ${url}: no user or password in the URL (use --token-file)`);
  if (u.pathname !== '/' || u.hash) throw new OutputSpecError(`--output ${url}: no path after HOST:PORT`);
  if (!u.port) throw new OutputSpecError(`--output ${url}: no port (expected ${m[1]}://HOST:PORT)`);
  const host = u.hostname;
  if (!tls && !o.insecurePlaintext && !isLoopback(host)) {
    throw new OutputSpecError(`--output ${url}: events would cross the network in clear text; use grpcs:// (with --tls-ca) or pass --insecure-plaintext`);
  }
  const params = u.searchParams;
  onlyKeys(url, params, ['batch', 'compress', 'fsync']);
  const compress = params.get('compress');
  if (compress !== null && compress !== 'gzip' && compress !== 'none') throw new OutputSpecError(`--output ${url}: compress must be gzip or none, got '${compress}'`);
  const fsync = (params.get('fsync') ?? 'interval') as FsyncPolicy;
  if (!['interval', 'always', 'never'].includes(fsync)) throw new OutputSpecError(`--output ${url}: fsync must be interval, always or never, got '${fsync}'`);
  return { kind: 'grpc', url, host, port: Number(u.port), tls, batchEvents: positive(url, params, 'batch', 1000, 100_000), compress: compress === 'gzip', fsync };
}

/** Parse and check --output URLs (none means stdout). Throws OutputSpecError naming the bad URL and why. */
export function parseOutputs(urls: readonly string[], o: ParseOutputsOptions = {}): OutputSpec[] {
  const specs = (urls.length ? urls : ['stdout']).map((u) => parseOne(u.trim(), o));
  const seen = new Set<string>();
  for (const s of specs) {
    const key = s.kind === 'file' ? `file:${s.path}` : s.kind === 'grpc' ? `grpc:${s.host}:${s.port}` : s.kind === 'fleet' ? `fleet:${s.url}` : 'stdout';
    if (seen.has(key)) throw new OutputSpecError(`--output ${s.url}: given twice`);
    seen.add(key);
  }
  return specs;
}
