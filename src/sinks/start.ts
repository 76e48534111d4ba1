// From --output URLs to a running SinkHub: what `ctrwatch run` calls.

import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { loadEventSchema, type EventSchema } from '../proto/schema';
import { compileEventCodec, type EventCodec } from './codec';
import { createFleetSink } from './fleet';
import { sensorVersion } from '../paths';
import { clientCredentials, CredentialsError, readTokens, type TlsFiles } from './credentials';
import { FileSink } from './file';
import { GrpcSink, type GrpcSinkOptions } from './grpc';
import { SinkHub } from './hub';
import { parseOutputs, type OutputSpec } from './outputs';
import { StdoutSink } from './stdout';
import type { Sink } from './types';

export const DEFAULT_SPOOL_DIR = '/var/lib/ctrwatch/spool';
export const DEFAULT_SPOOL_MAX_BYTES = 1 << 30;

export interface CreateSinksOptions {
  logger: Logger;
  codec: EventCodec;
  /** Node name and boot id of this sensor: the identity of its spooled events. */
  node: string;
  bootId: string;
  /** This sensor run (a random UUID by default). */
  instanceId: string;
  /** One subdirectory a network sink. Default /var/lib/ctrwatch/spool. */
  spoolDir?: string;
  /** Per network sink. Default 1 GiB. */
  spoolMaxBytes?: number;
  tls?: TlsFiles;
  tokenFile?: string;
  /** stdout's destination (fd 1 by default) and what to do when its reader goes away. */
  stdout?: Writable | number;
  onStdoutClosed?: (err: Error) => void;
  /** Tuning of the network sinks (tests, benches). */
  grpc?: Partial<Omit<GrpcSinkOptions, 'logger' | 'spec' | 'identity' | 'spoolDir' | 'credentials' | 'token'>>;
}

export interface StartSinksOptions extends Omit<CreateSinksOptions, 'codec' | 'instanceId'> {
  insecurePlaintext?: boolean;
  instanceId?: string;
  schema?: EventSchema;
}

function spoolName(spec: Extract<OutputSpec, { kind: 'grpc' }>): string {
  return `${spec.host}_${spec.port}`.replace(/[^A-Za-z0-9._-]/g, '_');
}

export async function createSinks(specs: readonly OutputSpec[], o: CreateSinksOptions): Promise<Sink[]> {
  const grpcSpecs = specs.filter((s) => s.kind === 'grpc');
  const tls = o.tls ?? {};
  if ((tls.ca || tls.cert || tls.key) && !grpcSpecs.some((s) => s.kind === 'grpc' && s.tls)) {
    throw new CredentialsError('--tls-ca/--tls-cert/--tls-key given but no grpcs:// output uses them');
  }
  const fleetSpecs = specs.filter((s) => s.kind === 'fleet');
  if (o.tokenFile && !grpcSpecs.length && !fleetSpecs.length) throw new CredentialsError('--token-file given but no network output uses it');
  const token = o.tokenFile ? readTokens(o.tokenFile)[0] : undefined;
  const fleetToken = token;
  const sinks: Sink[] = [];
  try {
    for (const spec of specs) {
      if (spec.kind === 'stdout') {
        sinks.push(new StdoutSink({ logger: o.logger, codec: o.codec, out: o.stdout, onClosed: o.onStdoutClosed }));
      } else if (spec.kind === 'file') {
        sinks.push(new FileSink({ logger: o.logger, path: spec.path, maxBytes: spec.maxBytes, keep: spec.keep }));
      } else if (spec.kind === 'fleet') {
        sinks.push(
          await createFleetSink(spec.fleet, {
            logger: o.logger, codec: o.codec, node: o.node, bootId: o.bootId, instanceId: o.instanceId,
            spoolDir: o.spoolDir ?? DEFAULT_SPOOL_DIR, spoolMaxBytes: o.spoolMaxBytes ?? DEFAULT_SPOOL_MAX_BYTES,
            version: sensorVersion(), token: fleetToken,
            headers: fleetToken && spec.fleet.kind === 'otlp' ? { authorization: `Bearer ${fleetToken}` } : undefined,
          }),
        );
      } else {
        sinks.push(
          await GrpcSink.create({
            ...o.grpc,
            logger: o.logger,
            spec,
            identity: { instanceId: o.instanceId, node: o.node, bootId: o.bootId },
            spoolDir: path.join(o.spoolDir ?? DEFAULT_SPOOL_DIR, spoolName(spec)),
            spoolMaxBytes: o.spoolMaxBytes ?? DEFAULT_SPOOL_MAX_BYTES,
            credentials: clientCredentials(spec.tls, spec.tls ? tls : {}),
            token,
          }),
        );
      }
    }
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
