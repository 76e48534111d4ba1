// TLS and bearer-token material for both ends of the gRPC stream, read from files named on
// the command line, with errors that name the file. The gRPC credentials made of them are in
// grpc-credentials.ts, apart: loading gRPC is resident memory a sensor without a gRPC output
// does not carry.

import * as fs from 'node:fs';
import { isIP } from 'node:net';

export interface TlsFiles {
  /** CA bundle: the sensor checks the collector with it; the collector checks client certificates. */
  ca?: string;
  /** Own certificate chain and key (a client certificate on the sensor). */
  cert?: string;
  key?: string;
}

export class CredentialsError extends Error {
  override name = 'CredentialsError';
}

/** Loopback: where clear text never leaves the host (both ends allow it without --insecure-plaintext). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

export function readPem(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new CredentialsError(`${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Bearer tokens from a file: one a line (the sensor uses the first; the collector accepts any). */
export function readTokens(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CredentialsError(`--token-file ${file}: ${(err as Error).message}`, { cause: err });
  }
  const tokens = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (!tokens.length) throw new CredentialsError(`--token-file ${file}: no token in it`);
  for (const t of tokens)
    if (!/^[\x21-\x7e]+$/.test(t)) throw new CredentialsError(`--token-file ${file}: a token must be printable ASCII without spaces`);
  return tokens;
}
