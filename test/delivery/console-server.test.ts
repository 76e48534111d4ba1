// The console's server: the --listen rules (TLS with client certificates, bearer tokens, clear
// text only on loopback), read-only, clear 400s, the live feed, and the order the collector
// keeps: a batch is acknowledged only after the console's store holds it.

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCollector } from '../../src/collect/collector';
import { collectMain } from '../../src/collect/main';
import { startConsole, type RunningConsole } from '../../src/console/server';
import { EventStore } from '../../src/console/store';
import { compileEventCodec } from '../../src/proto/codec';
import { loadEventSchema } from '../../src/proto/schema';
import { decodeAck, encodeBatch, SHIP_PATH } from '../../src/proto/wire';
import { syntheticEvent } from '../support/events';
import { makeCerts, removeTmpDirs, tmpDir, type Certs } from './helpers';

const logger = pino({ level: 'silent' });
let certs: Certs;
let tokenFile: string;
const stores: EventStore[] = [];
const servers: RunningConsole[] = [];

beforeAll(() => {
  certs = makeCerts();
  tokenFile = path.join(certs.dir, 'tokens');
  fs.writeFileSync(tokenFile, '# console tokens\nr3ad-token\n');
});
afterAll(async () => {
  for (const s of servers) await s.close();
  for (const s of stores) await s.close();
  removeTmpDirs();
});

function store(): EventStore {
  const s = new EventStore({ file: ':memory:', logger, retainEveryMs: 0 });
  stores.push(s);
  return s;
}

async function serve(o: Partial<Parameters<typeof startConsole>[0]> = {}): Promise<RunningConsole> {
  const s = await startConsole({ listen: '127.0.0.1:0', store: o.store ?? store(), logger, ...o });
  servers.push(s);
  return s;
}

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(url: string, o: https.RequestOptions = {}): Promise<Res> {
  const mod = url.startsWith('https') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method: 'GET', ...o }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

describe('console server: the same rules as --listen', () => {
  it('refuses clear text on an address other than loopback unless --insecure-plaintext, and bad --ui flags', async () => {
    await expect(startConsole({ listen: '0.0.0.0:0', store: store(), logger })).rejects.toThrow(
      /--ui 0\.0\.0\.0:0: clear text on an address other than loopback; give --tls-cert\/--tls-key .* or pass --insecure-plaintext/,
    );
    const open = await serve({ listen: '0.0.0.0:0', insecurePlaintext: true });
    expect((await get(`http://127.0.0.1:${open.port}/api/meta`)).status).toBe(200);
    const out = tmpDir('collect');
    const run = (...extra: string[]) => collectMain(['--listen', '127.0.0.1:0', '--out', out, ...extra], logger);
    await expect(run('--ui', '0.0.0.0:0')).rejects.toThrow(/clear text on an address other than loopback/);
    await expect(run('--ui', 'nowhere')).rejects.toThrow(/--ui must be HOST:PORT, got 'nowhere'/);
    await expect(run('--ui', '127.0.0.1:0', '--ui-max-age', '7x')).rejects.toThrow(/--ui-max-age must be .* got '7x'/);
    await expect(run('--ui', '127.0.0.1:0', '--ui-max-mb', 'lots')).rejects.toThrow(
      /--ui-max-mb must be a positive whole number of MiB, got 'lots'/,
    );
    await expect(run('--ui-db', '/tmp/x.sqlite')).rejects.toThrow(/--ui-db needs --ui HOST:PORT/);
  });

  it('a wrong or missing token gets 401; the page itself loads without one', async () => {
    const s = await serve({ tokenFile });
    const noToken = await get(`${s.url}api/events`);
    expect(noToken.status).toBe(401);
    expect(noToken.headers['www-authenticate']).toBe('Bearer');
    expect(JSON.parse(noToken.body).error).toMatch(/missing or wrong bearer token/);
    expect((await get(`${s.url}api/events`, bearer('wrong-token'))).status).toBe(401);
    expect((await get(`${s.url}api/stream`, bearer('r3ad-toke'))).status).toBe(401);
    expect((await get(`${s.url}api/events`, bearer('r3ad-token'))).status).toBe(200);
    const page = await get(s.url);
    expect(page.status).toBe(200);
    expect(page.body).not.toMatch(/r3ad-token/);
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self'/);
  });

  it('TLS with client certificates: no certificate, no answer; with one and the token, 200', async () => {
    const s = await serve({ tls: { ca: certs.ca, cert: certs.serverCert, key: certs.serverKey }, tokenFile });
    expect(s.url).toMatch(/^https:/);
    const ca = fs.readFileSync(certs.ca);
    const url = `https://localhost:${s.port}/api/meta`;
    await expect(get(url, { ca, ...bearer('r3ad-token') })).rejects.toThrow();
    await expect(
      get(url, { ca, cert: fs.readFileSync(certs.rogueCert), key: fs.readFileSync(certs.rogueKey), ...bearer('r3ad-token') }),
    ).rejects.toThrow();
    const client = { ca, cert: fs.readFileSync(certs.clientCert), key: fs.readFileSync(certs.clientKey) };
    expect((await get(url, { ...client, ...bearer('nope') })).status).toBe(401);
    expect((await get(url, { ...client, ...bearer('r3ad-token') })).status).toBe(200);
    await expect(get(`http://127.0.0.1:${s.port}/api/meta`)).rejects.toThrow();
  });

  it('is read-only and answers a bad query with a clear 400', async () => {
    const s = await serve();
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await get(`${s.url}api/events`, { method });
      expect(r.status).toBe(405);
      expect(JSON.parse(r.body).error).toMatch(/read-only/);
    }
    const bad = await get(`${s.url}api/events?severity=SEVERE`);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toBe("severity: 'SEVERE' is not one of INFO, LOW, MEDIUM, HIGH, CRITICAL");
    expect(JSON.parse((await get(`${s.url}api/events?limit=9999`)).body).error).toMatch(
      /limit: '9999' is not a whole number from 1 to 500/,
    );
    expect((await get(`${s.url}api/stream?window=1h`)).status).toBe(400);
    expect((await get(`${s.url}api/events/12345`)).status).toBe(404);
    expect((await get(`${s.url}api/nothing`)).status).toBe(404);
    expect((await get(`${s.url}../../etc/passwd`)).status).toBe(404);
    expect((await get(`${s.url}vendor/../package.json`)).status).toBe(404);
  });

  it('the live feed sends new events that match its filter, after the ones it catches up on', async () => {
    const st = store();
    const s = await serve({ store: st });
    const H = { node: 'node-a', bootId: 'boot-1', instanceId: 'inst-1' };
    const ev = (seq: number, node = 'node-a') =>
      JSON.parse(JSON.stringify(syntheticEvent(seq, 'run', node, 'boot-1'), (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
    st.ingest(H, [ev(1), ev(2)]);
    const got: { id: number; seq: string }[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const req = http.get(`${s.url}api/stream?node=node-a&kind=containerExec&after=1`, (res) => {
        expect(res.headers['content-type']).toMatch(/text\/event-stream/);
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buf += d;
          for (const m of buf.matchAll(/^data: (.*)$/gm)) if (!got.some((g) => g.id === JSON.parse(m[1]).id)) got.push(JSON.parse(m[1]));
          if (got.length >= 3) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', (e) => (got.length >= 3 ? resolve() : reject(e)));
    });
    await new Promise((r) => setTimeout(r, 100));
    st.ingest({ ...H, node: 'node-b' }, [ev(3, 'node-b')]); // another node: filtered out
    st.ingest(H, [ev(4), ev(5)]);
    await done;
    expect(got.map((g) => String(g.seq))).toEqual(['2', '4', '5']);
  });
});

describe('console server: live feeds are bounded', () => {
  it('a 65th live feed gets 503 with Retry-After; one closing makes room', async () => {
    const s = await serve();
    const open: http.ClientRequest[] = [];
    const start = () =>
      new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.get(`${s.url}api/stream`, resolve);
        req.on('error', reject);
        open.push(req);
      });
    try {
      for (let i = 0; i < 64; i++) expect((await start()).statusCode).toBe(200);
      const refused = await start();
      expect(refused.statusCode).toBe(503);
      expect(refused.headers['retry-after']).toBe('10');
      open[0].destroy();
      await new Promise((r) => setTimeout(r, 200));
      expect((await start()).statusCode).toBe(200);
    } finally {
      for (const r of open) r.destroy();
    }
  });
});

describe('collector → console store → acknowledgement', () => {
  it('acknowledges a batch only once the store holds its events', async () => {
    const st = store();
    const out = tmpDir('out');
    const col = await runCollector({ listen: '127.0.0.1:0', outDir: out, logger, onEvents: (h, evs) => st.ingest(h, evs) });
    const codec = compileEventCodec(loadEventSchema());
    const client = new grpc.Client(`127.0.0.1:${col.port}`, grpc.credentials.createInsecure());
    try {
      const call = client.makeBidiStreamRequest(
        SHIP_PATH,
        (b: Buffer) => b,
        (b: Buffer) => b,
        new grpc.Metadata(),
      );
      call.on('error', () => undefined); // the collector's close ends the stream
      const stored: number[] = [];
      const acked = new Promise<void>((resolve) =>
        call.on('data', (b: Buffer) => {
          const a = decodeAck(b);
          // At the moment of each ack: how many of the batch's events the store holds.
          stored.push((st.db.prepare('SELECT count(*) AS n FROM events WHERE seq <= ?').get(Number(a.seq)) as { n: number }).n);
          if (a.seq === 20n) resolve();
        }),
      );
      for (const b of [0, 1]) {
        const evs = Array.from({ length: 10 }, (_, i) => codec.encode(syntheticEvent(b * 10 + i + 1, 'r', 'node-a', 'boot-1')));
        call.write(
          encodeBatch(
            { node: 'node-a', bootId: 'boot-1', instanceId: 'inst-1', floorSeq: BigInt(b * 10 + 1), batchId: BigInt(b + 1) },
            evs,
          ),
        );
      }
      await acked;
      call.end();
      expect(stored).toEqual([10, 20]);
    } finally {
      client.close();
      await col.close();
    }
  });
});
