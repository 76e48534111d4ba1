// The `ctrwatch collect` flags, for node:util parseArgs, and their translation into
// runCollector options.

import type { CollectorOptions } from './collector';

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
