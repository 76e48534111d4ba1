// gRPC credentials from the TLS files of credentials.ts: the sensor's client side and the
// collector's server side.

import * as grpc from '@grpc/grpc-js';
import { CredentialsError, readPem, type TlsFiles } from './credentials';

export function clientCredentials(tls: boolean, f: TlsFiles): grpc.ChannelCredentials {
  if (!tls) {
    if (f.ca || f.cert || f.key) throw new CredentialsError('--tls-ca/--tls-cert/--tls-key given but no grpcs:// output uses them');
    return grpc.credentials.createInsecure();
  }
  if (!!f.cert !== !!f.key) throw new CredentialsError('--tls-cert and --tls-key go together');
  return grpc.credentials.createSsl(
    f.ca ? readPem(f.ca, '--tls-ca') : null,
    f.key ? readPem(f.key, '--tls-key') : null,
    f.cert ? readPem(f.cert, '--tls-cert') : null,
  );
}

/**
 * Collector side: a server certificate, and with `ca` client certificates are required and
 * checked against it.
 */
export function serverCredentials(f: TlsFiles | undefined): grpc.ServerCredentials {
  if (!f || (!f.cert && !f.key && !f.ca)) return grpc.ServerCredentials.createInsecure();
  if (!f.cert || !f.key) throw new CredentialsError('the collector needs --tls-cert and --tls-key for TLS');
  return grpc.ServerCredentials.createSsl(
    f.ca ? readPem(f.ca, '--tls-ca') : null,
    [{ cert_chain: readPem(f.cert, '--tls-cert'), private_key: readPem(f.key, '--tls-key') }],
    !!f.ca,
  );
}
