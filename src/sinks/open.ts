// The one factory: from --output URLs to a running SinkHub (what `ctrwatch run` calls), and
// from one parsed output to its open sink (what tests and benches call).

import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { compileEventCodec, type EventCodec } from '../proto/codec';
import { CredentialsError, readTokens, type TlsFiles } from '../proto/credentials';
import { loadEventSchema, type EventSchema } from '../proto/schema';
import { sensorVersion } from '../paths';
import { SinkHub } from './hub';
import { FileSink } from './local/file';
import { StdoutSink } from './local/stdout';
import type { GrpcSinkOptions } from './remote/grpc';
import type { NatsSinkOptions } from './remote/nats';
import type { OtlpSinkOptions } from './remote/otlp';
import type { SpoolIdentity } from './spool/spool';
import type { Sink } from './types';
import { parseOutputs, type OutputSpec, type RemoteSpec } from './urls';

export const DEFAULT_SPOOL_DIR = '/var/lib/ctrwatch/spool';
export const DEFAULT_SPOOL_MAX_BYTES = 1 << 30;

type Fixed = 'logger' | 'spec' | 'identity' | 'spoolDir' | 'spoolMaxBytes' | 'credentials' | 'token' | 'codec' | 'version' | 'headers';

/** Tuning of the remote outputs (tests, benches): each takes the knobs it knows. */
export type RemoteTuning = Partial<Omit<GrpcSinkOptions, Fixed> & Omit<OtlpSinkOptions, Fixed> & Omit<NatsSinkOptions, Fixed>>;

export interface OpenSinkOptions {
  logger: Logger;
  codec: EventCodec;
  /** Node name and boot id of this sensor: the identity of its spooled events. */
  node: string;
  bootId: string;
  /** This sensor run. */
  instanceId: string;
  /** Parent of the spools: one subdirectory a remote output. Default /var/lib/ctrwatch/spool. */
  spoolDir?: string;
  /** Per remote output. Default 1 GiB. */
  spoolMaxBytes?: number;
  /** grpcs:// client TLS files. */
  tls?: TlsFiles;
  /** Bearer token of the remote outputs. */
  token?: string;
  /** ctrwatch.version resource attribute (OTLP); the package's by default. */
  version?: string;
  /** stdout's destination (fd 1 by default) and what to do when its reader goes away. */
  stdout?: Writable | number;
  onStdoutClosed?: (err: Error) => void;
  tuning?: RemoteTuning;
}

export interface CreateSinksOptions extends Omit<OpenSinkOptions, 'token'> {
  tokenFile?: string;
}

export interface StartSinksOptions extends Omit<CreateSinksOptions, 'codec' | 'instanceId'> {
  insecurePlaintext?: boolean;
  instanceId?: string;
  schema?: EventSchema;
}

/** The spool subdirectory of a remote output, named after where it sends. */
export function spoolName(spec: RemoteSpec): string {
  const key =
    spec.kind === 'grpc'
      ? `${spec.host}_${spec.port}`
      : spec.kind === 'otlp'
        ? `otlp_${spec.host}_${spec.port}`
        : `nats_${spec.servers[0]}_${spec.subject}`;
  return key.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** Open one output (a remote one recovers its spool first). whenDelivered() is there for tests. */
export async function openSink(spec: OutputSpec, o: OpenSinkOptions): Promise<Sink & { whenDelivered?(): Promise<void> }> {
  if (spec.kind === 'stdout') return new StdoutSink({ logger: o.logger, codec: o.codec, out: o.stdout, onClosed: o.onStdoutClosed });
  if (spec.kind === 'file') return new FileSink({ logger: o.logger, path: spec.path, maxBytes: spec.maxBytes, keep: spec.keep });
  const identity: SpoolIdentity = { instanceId: o.instanceId, node: o.node, bootId: o.bootId };
  const common = {
    ...o.tuning,
    logger: o.logger,
    identity,
    spoolDir: path.join(o.spoolDir ?? DEFAULT_SPOOL_DIR, spoolName(spec)),
    spoolMaxBytes: o.spoolMaxBytes ?? DEFAULT_SPOOL_MAX_BYTES,
  };
  // Each remote output's module is loaded when an output of its kind is opened: gRPC and NATS
  // are megabytes of resident memory that a sensor writing to stdout does not carry.
  if (spec.kind === 'grpc') {
    const [{ GrpcSink }, { clientCredentials }] = await Promise.all([import('./remote/grpc'), import('../proto/grpc-credentials')]);
    return GrpcSink.create({ ...common, spec, credentials: clientCredentials(spec.tls, spec.tls ? (o.tls ?? {}) : {}), token: o.token });
  }
  if (spec.kind === 'otlp') {
    const { OtlpSink } = await import('./remote/otlp');
    const headers = o.token ? { authorization: `Bearer ${o.token}` } : undefined;
    return OtlpSink.create({ ...common, spec, codec: o.codec, version: o.version ?? sensorVersion(), headers });
  }
  const { NatsSink } = await import('./remote/nats');
  return NatsSink.create({ ...common, spec, token: o.token });
}

/** Open every output, or none: on an error those already open are closed. */
export async function createSinks(specs: readonly OutputSpec[], o: CreateSinksOptions): Promise<Sink[]> {
  const tls = o.tls ?? {};
  if ((tls.ca || tls.cert || tls.key) && !specs.some((s) => s.kind === 'grpc' && s.tls)) {
    throw new CredentialsError('--tls-ca/--tls-cert/--tls-key given but no grpcs:// output uses them');
  }
  if (o.tokenFile && !specs.some((s) => s.kind !== 'stdout' && s.kind !== 'file'))
    throw new CredentialsError('--token-file given but no network output uses it');
  const token = o.tokenFile ? readTokens(o.tokenFile)[0] : undefined;
  const sinks: Sink[] = [];
  try {
    for (const spec of specs) sinks.push(await openSink(spec, { ...o, token }));
  } catch (err) {
    await Promise.allSettled(sinks.map((s) => s.close()));
    throw err;
  }
  return sinks;
}

/**
 * Parse `urls` (none: stdout), open every sink (network sinks first recover their spool), and
 * return the hub to publish stamped events to. Throws OutputSpecError / CredentialsError /
 * SpoolError with a message fit for the command line.
 */
export async function startSinks(urls: readonly string[], o: StartSinksOptions): Promise<SinkHub> {
  const specs = parseOutputs(urls, { insecurePlaintext: o.insecurePlaintext });
  const codec = compileEventCodec(o.schema ?? loadEventSchema());
  const instanceId = o.instanceId ?? randomUUID();
  const sinks = await createSinks(specs, { ...o, codec, instanceId });
  const hub = new SinkHub({ logger: o.logger, codec, sinks, instanceId });
  o.logger.child({ component: 'sinks' }).info({ outputs: specs.map((s) => s.url), instanceId }, 'sinks started');
  return hub;
}
