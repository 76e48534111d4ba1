// The `ctrwatch collect` flags, for node:util parseArgs, and their translation into
// runCollector options.

import { CredentialsError, isLoopback, readPem, readTokens } from '../proto/credentials';
import type { CollectorOptions } from './collector';
import type { JetStreamCollectorOptions } from './jetstream';

/** A bad `ctrwatch collect` flag: says which and why. */
export class CollectFlagError extends Error {
  override name = 'CollectFlagError';
}

export const COLLECT_FLAGS = {
  listen: { type: 'string' },
  out: { type: 'string' },
  'max-mb': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'token-file': { type: 'string' },
  'insecure-plaintext': { type: 'boolean' },
} as const;

export const COLLECT_USAGE = `collect options:
  --listen HOST:PORT     address to serve Collector.Ship on (required)
  --out DIR              output: DIR/<node>/events-NNNNNN.jsonl (required)
  --max-mb N             rotate a node's file past N MiB (default 256)
  --tls-cert FILE        server certificate, with --tls-key FILE
  --tls-ca FILE          require client certificates signed by this CA
  --token-file FILE      accepted bearer tokens, one a line
  --insecure-plaintext   allow clear text on an address that is not loopback
  --ui HOST:PORT         also serve the read-only web console (same TLS, token and loopback rules)
  --ui-db FILE           the console's SQLite database (default OUT/console.sqlite)
  --ui-max-age AGE       keep the console's events this long: 30m, 12h, 7d (default 7d)
  --ui-max-mb N          keep its database under N MiB, oldest events first out (default 1024)

collect --from nats://HOST:PORT[,HOST:PORT…]/STREAM (or tls://…) --out DIR:
  drain a JetStream stream that nats:// outputs publish to, instead of --listen
  --durable NAME         the durable consumer (default ctrwatch-collector)
  --tls-ca FILE          TLS to the NATS servers, checked against this CA (tls:// alone: the system's CAs)
  --tls-cert FILE        client certificate, with --tls-key FILE
  --token-file FILE      the NATS token: the file's first token
  --insecure-plaintext   allow clear text to a NATS server that is not loopback
`;

type Values = { [K in keyof typeof COLLECT_FLAGS]?: (typeof COLLECT_FLAGS)[K]['type'] extends 'boolean' ? boolean : string };

/** parseArgs values → runCollector options (less logger). Throws CollectFlagError (a usage error). */
export function collectFlags(v: Values): Omit<CollectorOptions, 'logger'> {
  if (!v.listen) throw new CollectFlagError('collect needs --listen HOST:PORT');
  if (!v.out) throw new CollectFlagError('collect needs --out DIR');
  const mb = v['max-mb'];
  if (mb !== undefined && (!/^\d+$/.test(mb) || Number(mb) <= 0))
    throw new CollectFlagError(`--max-mb must be a positive whole number, got '${mb}'`);
  const tls = { ca: v['tls-ca'], cert: v['tls-cert'], key: v['tls-key'] };
  return {
    listen: v.listen,
    outDir: v.out,
    maxFileBytes: mb === undefined ? undefined : Number(mb) * 2 ** 20,
    tls: tls.ca || tls.cert || tls.key ? tls : undefined,
    tokenFile: v['token-file'],
    insecurePlaintext: v['insecure-plaintext'] ?? false,
  };
}

export const FROM_FLAGS = {
  from: { type: 'string' },
  out: { type: 'string' },
  durable: { type: 'string' },
  'max-mb': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'token-file': { type: 'string' },
  'insecure-plaintext': { type: 'boolean' },
} as const;

type FromValues = { [K in keyof typeof FROM_FLAGS]?: (typeof FROM_FLAGS)[K]['type'] extends 'boolean' ? boolean : string };

/** One HOST:PORT of a --from URL, [v6]:PORT included; the port is NATS's 4222 when left out. */
function natsServer(from: string, hp: string): { host: string; server: string } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(hp);
  if (!m || Number(m[3] ?? 4222) > 65535 || Number(m[3] ?? 4222) === 0)
    throw new CollectFlagError(`--from ${from}: '${hp}' is not HOST:PORT`);
  const host = m[1] ?? m[2]!;
  const port = m[3] ?? '4222';
  return { host, server: m[1] ? `[${host}]:${port}` : `${host}:${port}` };
}

/**
 * `collect --from` values → JetStreamCollector options (less logger and codec), under the rules
 * of --listen: TLS checked against --tls-ca (client certificates with --tls-cert/--tls-key), a
 * token read and checked from --token-file, clear text only to loopback unless
 * --insecure-plaintext. Throws CollectFlagError or CredentialsError (usage errors).
 */
export function fromFlags(v: FromValues): Omit<JetStreamCollectorOptions, 'logger' | 'codec'> & { clearTextTokenWarning: boolean } {
  const m = /^(nats|tls):\/\/([^/?#]+)\/([A-Za-z0-9_-]{1,64})$/.exec(v.from ?? '');
  if (!m) throw new CollectFlagError(`--from must be nats://HOST:PORT[,HOST:PORT…]/STREAM (or tls://…), got '${v.from ?? ''}'`);
  if (!v.out) throw new CollectFlagError('--out DIR is required');
  const servers = m[2]!.split(',').map((hp) => natsServer(v.from!, hp));
  const files = { ca: v['tls-ca'], cert: v['tls-cert'], key: v['tls-key'] };
  const tls = m[1] === 'tls' || !!(files.ca || files.cert || files.key);
  if (!!files.cert !== !!files.key) throw new CredentialsError('--tls-cert and --tls-key go together');
  const remote = servers.filter((s) => !isLoopback(s.host)).map((s) => s.server);
  if (!tls && remote.length && !v['insecure-plaintext'])
    throw new CollectFlagError(
      `--from ${v.from}: clear text to ${remote.join(', ')}, not loopback; give --tls-ca (or tls://) for TLS, or pass --insecure-plaintext`,
    );
  const mb = v['max-mb'];
  if (mb !== undefined && (!/^\d+$/.test(mb) || Number(mb) <= 0 || Number(mb) > 1 << 20))
    throw new CollectFlagError(`--max-mb must be a whole number from 1 to 1048576, got '${mb}'`);
  const durable = v.durable ?? 'ctrwatch-collector';
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(durable)) throw new CollectFlagError(`--durable must be letters, digits, _ or -, got '${durable}'`);
  const token = v['token-file'] ? readTokens(v['token-file'])[0] : undefined;
  return {
    servers: servers.map((s) => s.server),
    stream: m[3]!,
    durable,
    outDir: v.out,
    maxFileBytes: mb === undefined ? undefined : Number(mb) * 2 ** 20,
    token,
    tls: tls
      ? {
          ca: files.ca ? readPem(files.ca, '--tls-ca').toString() : undefined,
          cert: files.cert ? readPem(files.cert, '--tls-cert').toString() : undefined,
          key: files.key ? readPem(files.key, '--tls-key').toString() : undefined,
        }
      : undefined,
    clearTextTokenWarning: !tls && !!token && remote.length > 0,
  };
}
