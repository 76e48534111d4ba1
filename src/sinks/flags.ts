// The `ctrwatch run` flags of the sinks, for node:util parseArgs, and their translation into
// startSinks options. Kept here so that cli.ts needs three lines (see the snippet in
// docs/delivery.md).

import { OutputSpecError } from './types';
import type { StartSinksOptions } from './open';

export const SINK_FLAGS = {
  output: { type: 'string', multiple: true },
  'spool-dir': { type: 'string' },
  'spool-max-mb': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'token-file': { type: 'string' },
  'insecure-plaintext': { type: 'boolean' },
  metrics: { type: 'string' },
  'stats-interval-s': { type: 'string' },
} as const;

export const SINK_USAGE = `  --output URL           where events go, repeatable (default stdout):
                           stdout | file:PATH[?max-mb=256&keep=5] | grpc://HOST:PORT | grpcs://HOST:PORT
                           | otlp+http(s)://HOST:PORT[/PREFIX] (OTLP logs, protobuf, gzip)
                           | nats://HOST:PORT[,HOST:PORT…]/SUBJECT[?stream=NAME&replicas=3] (NATS JetStream)
                           grpc options: ?batch=1000&compress=gzip&fsync=interval|always|never
  --spool-dir DIR        spool of the network outputs (default /var/lib/ctrwatch/spool)
  --spool-max-mb N       spool size a network output (default 1024); when full, stats go first, detections last
  --tls-ca FILE          CA of the collector's certificate (grpcs://)
  --tls-cert FILE        client certificate (grpcs://), with --tls-key FILE
  --token-file FILE      bearer token sent to the collector (first line)
  --insecure-plaintext   allow grpc://, otlp+http:// or nats:// to an address that is not loopback
  --metrics HOST:PORT    serve Prometheus metrics at /metrics
  --stats-interval-s N   a sensorStats event every N seconds (default 60)
`;

export interface SinkFlags {
  outputs: string[];
  /** For startSinks, less logger, node and bootId. */
  options: Omit<StartSinksOptions, 'logger' | 'node' | 'bootId'>;
  metrics?: string;
  statsIntervalMs: number;
}

type Values = {
  [K in keyof typeof SINK_FLAGS]?: (typeof SINK_FLAGS)[K]['type'] extends 'boolean' ? boolean : K extends 'output' ? string[] : string;
};

function positive(name: string, v: string | undefined, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) <= 0) throw new OutputSpecError(`--${name} must be a positive whole number, got '${v}'`);
  if (Number(v) > max) throw new OutputSpecError(`--${name} must be at most ${max}, got ${v}`);
  return Number(v);
}

/** A timer longer than 2^31-1 ms fires at once in Node: a day is the longest stats interval. */
const MAX_STATS_INTERVAL_S = 86_400;
/** 1 TiB of spool. */
const MAX_SPOOL_MB = 1 << 20;

/** parseArgs values → startSinks options. Throws OutputSpecError (a usage error). */
export function sinkFlags(v: Values): SinkFlags {
  const tls = { ca: v['tls-ca'], cert: v['tls-cert'], key: v['tls-key'] };
  return {
    outputs: v.output ?? [],
    options: {
      spoolDir: v['spool-dir'],
      spoolMaxBytes: positive('spool-max-mb', v['spool-max-mb'], 1024, MAX_SPOOL_MB) * 2 ** 20,
      tls: tls.ca || tls.cert || tls.key ? tls : undefined,
      tokenFile: v['token-file'],
      insecurePlaintext: v['insecure-plaintext'] ?? false,
    },
    metrics: v.metrics,
    statsIntervalMs: positive('stats-interval-s', v['stats-interval-s'], 60, MAX_STATS_INTERVAL_S) * 1000,
  };
}
