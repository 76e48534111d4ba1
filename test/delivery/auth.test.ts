// TLS with client certificates, bearer tokens, and clients that send garbage: the collector
// refuses each bad one with a clear status, and a good client streaming at the same time is
// not disturbed.

import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as path from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCollector, type RunningCollector } from '../../src/collect/collector';
import { SHIP_PATH } from '../../src/proto/wire';
import { encodeBatch } from '../../src/proto/wire';
import { collected, killAll, makeCerts, spawnTs, tally, tmpDir, type Certs, removeTmpDirs } from './helpers';

const logger = pino({ level: 'silent' });
let certs: Certs;
let out: string;
let tokenFile: string;
let col: RunningCollector;

beforeAll(async () => {
  certs = makeCerts();
  out = tmpDir('out');
  tokenFile = path.join(certs.dir, 'tokens');
  fs.writeFileSync(tokenFile, '# accepted tokens\ns3cret-token\nother-token\n');
  col = await runCollector({
    listen: '127.0.0.1:0',
    outDir: out,
    logger,
    tls: { ca: certs.ca, cert: certs.serverCert, key: certs.serverKey },
    tokenFile,
  });
});
afterAll(async () => {
  await col.close();
  removeTmpDirs();
});
afterEach(killAll);

/** One Ship stream with raw messages; resolves with the final status. */
function ship(
  creds: grpc.ChannelCredentials,
  token: string | undefined,
  messages: Buffer[],
): Promise<{ code: number; details: string; acks: number }> {
  const client = new grpc.Client(`localhost:${col.port}`, creds);
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  const call = client.makeBidiStreamRequest(
    SHIP_PATH,
    (b: Buffer) => b,
    (b: Buffer) => b,
    md,
  );
  let acks = 0;
  call.on('data', () => acks++);
  for (const m of messages) call.write(m);
  call.end();
  return new Promise((resolve) => {
    call.on('error', () => undefined);
    call.on('status', (s) => {
      client.close();
      resolve({ code: s.code, details: s.details, acks });
    });
  });
}

const mtls = () =>
  grpc.credentials.createSsl(fs.readFileSync(certs.ca), fs.readFileSync(certs.clientKey), fs.readFileSync(certs.clientCert));
const tlsFiles = () => ({ ca: certs.ca, cert: certs.clientCert, key: certs.clientKey });

describe('collector authentication and hostile clients', () => {
  it('refuses, each with a clear status, while a good sensor streams undisturbed', async () => {
    const tok = path.join(certs.dir, 'sensor-token');
    fs.writeFileSync(tok, 's3cret-token\n');
    const good = spawnTs('driver.ts', {
      outputs: [`grpcs://localhost:${col.port}?compress=gzip`],
      spoolDir: tmpDir('spool'),
      count: 3000,
      rate: 1000,
      run: 'good',
      tokenFile: tok,
      tls: tlsFiles(),
    });
    await good.waitLine((l) => (l.delivered as number) > 100);

    // No token.
    const noToken = await ship(mtls(), undefined, []);
    expect(noToken.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(noToken.details).toMatch(/bearer token/);
    // Wrong token.
    expect((await ship(mtls(), 'guess', [])).code).toBe(grpc.status.UNAUTHENTICATED);
    // Garbage instead of a batch.
    const garbage = await ship(mtls(), 's3cret-token', [Buffer.from('this is not protobuf \xff\xff\xff')]);
    expect(garbage.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(garbage.details).toMatch(/not an EventBatch/);
    // A batch whose event is garbage.
    const badEvent = await ship(mtls(), 's3cret-token', [
      encodeBatch({ node: 'n1', bootId: 'b1', instanceId: 'i1', floorSeq: 1n, batchId: 1n }, [Buffer.from([0x0a, 0x7f, 1])]),
    ]);
    expect(badEvent.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(badEvent.details).toMatch(/batch 1, event 0: not a ctrwatch.v1.Event/);
    // A node name that would escape the output directory.
    const escape = await ship(mtls(), 's3cret-token', [
      encodeBatch({ node: '../etc', bootId: 'b1', instanceId: 'i1', floorSeq: 1n, batchId: 1n }, []),
    ]);
    expect(escape.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(escape.details).toMatch(/not a valid node name/);
    // A client certificate from another CA: the TLS handshake fails.
    const rogue = await ship(
      grpc.credentials.createSsl(fs.readFileSync(certs.ca), fs.readFileSync(certs.rogueKey), fs.readFileSync(certs.rogueCert)),
      's3cret-token',
      [],
    );
    expect(rogue.code).toBe(grpc.status.UNAVAILABLE);
    // No client certificate at all.
    expect((await ship(grpc.credentials.createSsl(fs.readFileSync(certs.ca)), 's3cret-token', [])).code).toBe(grpc.status.UNAVAILABLE);
    // Clear text to a TLS port.
    expect((await ship(grpc.credentials.createInsecure(), 's3cret-token', [])).code).toBe(grpc.status.UNAVAILABLE);
    // Raw bytes that are not HTTP/2 at all, and an HTTP/2 client that is not gRPC.
    await new Promise<void>((resolve) => {
      const s = net.connect(col.port, '127.0.0.1', () => s.end(Buffer.alloc(4096, 0x41)));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    });
    await new Promise<void>((resolve) => {
      const s = http2.connect(`https://localhost:${col.port}`, {
        ca: fs.readFileSync(certs.ca),
        key: fs.readFileSync(certs.clientKey),
        cert: fs.readFileSync(certs.clientCert),
      });
      s.on('error', () => resolve());
      const req = s.request({ ':method': 'POST', ':path': SHIP_PATH, 'content-type': 'text/plain' });
      req.on('error', () => undefined);
      req.end('hello');
      req.on('close', () => {
        s.close();
        resolve();
      });
    });

    const closed = await good.waitLine((l) => l.what === 'closed', 60_000);
    expect(closed).toMatchObject({ delivered: 3000, spooled: 0, dropped: {} });
    expect(closed.failures).toEqual({});
    const counts = tally(collected(out));
    expect([...counts.keys()].filter((k) => k.startsWith('good/')).length).toBe(3000);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(col.stats().refused).toMatchObject({ unauthenticated: 2, invalid_batch: 3 });
  });

  it('a sensor without the token is refused and counts it, spooling meanwhile', async () => {
    const d = spawnTs('driver.ts', {
      outputs: [`grpcs://localhost:${col.port}`],
      spoolDir: tmpDir('spool'),
      count: 500,
      rate: 1000,
      run: 'notoken',
      tls: tlsFiles(),
      drainMs: 500,
    });
    const closed = await d.waitLine((l) => l.what === 'closed', 30_000);
    expect((closed.failures as Record<string, number>).unauthenticated).toBeGreaterThanOrEqual(1);
    expect(closed.delivered).toBe(0);
    expect(closed.spooled).toBe(500);
  });
});
