// `collect --from` flags: the loopback clear-text rule, TLS files and the token file, checked
// before anything connects, with errors that name the flag or file.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CollectFlagError, fromFlags } from '../../src/collect/flags';
import { CredentialsError } from '../../src/proto/credentials';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrwatch-from-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};

describe('collect --from flags', () => {
  it('loopback in clear text; servers parsed, NATS port by default', () => {
    const o = fromFlags({ from: 'nats://127.0.0.1:4222,localhost,[::1]:5000/CTRW', out: dir });
    expect(o).toMatchObject({ servers: ['127.0.0.1:4222', 'localhost:4222', '[::1]:5000'], stream: 'CTRW', durable: 'ctrwatch-collector' });
    expect(o.tls).toBeUndefined();
  });

  it('clear text to a server that is not loopback is refused unless --insecure-plaintext', () => {
    expect(() => fromFlags({ from: 'nats://127.0.0.1:4222,10.0.0.7:4222/CTRW', out: dir })).toThrow(
      /clear text to 10\.0\.0\.7:4222, not loopback.*--insecure-plaintext/,
    );
    expect(() => fromFlags({ from: 'nats://nats.example:4222/CTRW', out: dir })).toThrow(CollectFlagError);
    const tok = file('tok', 't0k\n');
    const o = fromFlags({ from: 'nats://10.0.0.7:4222/CTRW', out: dir, 'insecure-plaintext': true, 'token-file': tok });
    expect(o.tls).toBeUndefined();
    expect(o.clearTextTokenWarning).toBe(true);
  });

  it('TLS by tls:// or by --tls-ca: then any host, files read now', () => {
    expect(fromFlags({ from: 'tls://nats.example:4222/CTRW', out: dir }).tls).toEqual({ ca: undefined, cert: undefined, key: undefined });
    const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\n');
    expect(fromFlags({ from: 'nats://10.0.0.7/CTRW', out: dir, 'tls-ca': ca }).tls?.ca).toContain('BEGIN CERTIFICATE');
    expect(() => fromFlags({ from: 'tls://h/CTRW', out: dir, 'tls-ca': path.join(dir, 'nope.pem') })).toThrow(/--tls-ca .*nope\.pem/);
    expect(() => fromFlags({ from: 'tls://h/CTRW', out: dir, 'tls-cert': ca })).toThrow(CredentialsError);
  });

  it('the token file: its first token, checked', () => {
    expect(fromFlags({ from: 'nats://127.0.0.1/S', out: dir, 'token-file': file('t1', '# comment\n  abc  \nsecond\n') }).token).toBe('abc');
    expect(() => fromFlags({ from: 'nats://127.0.0.1/S', out: dir, 'token-file': file('t2', '\n# none\n') })).toThrow(/no token in it/);
    expect(() => fromFlags({ from: 'nats://127.0.0.1/S', out: dir, 'token-file': file('t3', 'a b\n') })).toThrow(/printable ASCII/);
    expect(() => fromFlags({ from: 'nats://127.0.0.1/S', out: dir, 'token-file': path.join(dir, 'missing') })).toThrow(
      /--token-file .*missing/,
    );
  });

  it('bad URLs and values name what is wrong', () => {
    expect(() => fromFlags({ from: 'http://127.0.0.1/S', out: dir })).toThrow(/--from must be nats:\/\//);
    expect(() => fromFlags({ from: 'nats://127.0.0.1:99999/S', out: dir })).toThrow(/'127\.0\.0\.1:99999' is not HOST:PORT/);
    expect(() => fromFlags({ from: 'nats://127.0.0.1/S' })).toThrow(/--out DIR/);
    expect(() => fromFlags({ from: 'nats://127.0.0.1/S', out: dir, durable: 'a.b' })).toThrow(/--durable/);
    expect(() => fromFlags({ from: 'nats://127.0.0.1/S', out: dir, 'max-mb': '0' })).toThrow(/--max-mb/);
  });
});
