// `collect --from` under the rules of `--listen`: a real nats-server with JetStream that requires
// TLS with client certificates and a token, on loopback (random port, temporary dirs). The
// nats-server started here is killed in afterAll and on process exit, whatever happens.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect, headers } from 'nats';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromFlags } from '../../src/collect/flags';
import { JetStreamCollector } from '../../src/collect/jetstream';
import { compileEventCodec } from '../../src/proto/codec';
import { loadEventSchema } from '../../src/proto/schema';
import { killTrackedAndWait, track } from '../support/children';
import { requires } from '../support/env';
import { freePort } from '../support/net';
import { collected, makeCerts, removeTmpDirs, tmpDir, until, type Certs } from './helpers';
import { syntheticEvent } from './synthetic';

const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
const codec = compileEventCodec(loadEventSchema());
const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => fs.existsSync(p));
const haveNats = !!NATS_SERVER && spawnSync(NATS_SERVER, ['--version']).status === 0;
process.on('exit', () => void killTrackedAndWait());

describe.runIf(requires(haveNats, 'nats-server (apt-get install nats-server)'))('collect --from over TLS with a token', () => {
  let certs: Certs;
  let port: number;
  let dir: string;
  const token = 'n4ts-t0ken';
  const file = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  const pem = () => ({
    ca: fs.readFileSync(certs.ca, 'utf8'),
    cert: fs.readFileSync(certs.clientCert, 'utf8'),
    key: fs.readFileSync(certs.clientKey, 'utf8'),
  });

  beforeAll(async () => {
    certs = makeCerts();
    dir = tmpDir('nats-tls');
    port = await freePort();
    const conf = file(
      'nats.conf',
      `listen: 127.0.0.1:${port}\njetstream { store_dir: "${path.join(dir, 'js')}" }\n` +
        `authorization { token: "${token}" }\n` +
        `tls { cert_file: "${certs.serverCert}", key_file: "${certs.serverKey}", ca_file: "${certs.ca}", verify: true }\n`,
    );
    const p = track(spawn(NATS_SERVER!, ['-c', conf], { stdio: 'ignore' }));
    const publish = async () => {
      const nc = await connect({ servers: `127.0.0.1:${port}`, token, tls: pem(), timeout: 1000, maxReconnectAttempts: 0 });
      try {
        const jsm = await nc.jetstreamManager();
        await jsm.streams.add({ name: 'CTRW', subjects: ['ctrwatch.events'] });
        const js = nc.jetstream();
        for (let seq = 1; seq <= 20; seq++) {
          const h = headers();
          h.set('Nats-Msg-Id', `node-a:boot-1:inst-1:${seq}`);
          await js.publish('ctrwatch.events', codec.encodeKind(syntheticEvent(seq, 'r1', 'node-a', 'boot-1')).bytes, { headers: h });
        }
      } finally {
        await nc.close();
      }
    };
    let last: unknown;
    for (const end = Date.now() + 15_000; ;) {
      if (p.exitCode !== null) throw new Error(`nats-server exited ${p.exitCode}`);
      try {
        await publish();
        break;
      } catch (err) {
        last = err;
        if (Date.now() > end) throw new Error(`nats-server with TLS and a token not ready: ${String(last)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }, 60_000);

  afterAll(async () => {
    await killTrackedAndWait();
    removeTmpDirs();
  });

  const from = (over: Record<string, string | boolean> = {}) =>
    fromFlags({
      from: `nats://127.0.0.1:${port}/CTRW`,
      out: path.join(dir, `out-${Math.random().toString(36).slice(2)}`),
      'tls-ca': certs.ca,
      'tls-cert': certs.clientCert,
      'tls-key': certs.clientKey,
      'token-file': file('token', `# the fleet's token\n${token}\n`),
      ...over,
    });

  it('with the CA, a client certificate and the token: every event collected', async () => {
    const { clearTextTokenWarning, ...o } = from();
    expect(clearTextTokenWarning).toBe(false);
    const c = await JetStreamCollector.start({ ...o, durable: 'ok', codec, logger });
    try {
      const evs = await until(
        () => {
          const e = collected(o.outDir);
          return e.length >= 20 && e;
        },
        20_000,
        'the 20 events',
      );
      expect(evs.map((e) => Number(e.seq)).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    } finally {
      await c.close();
    }
  }, 30_000);

  const refused = async (o: ReturnType<typeof from>, durable: string) => {
    const { clearTextTokenWarning: _, ...opts } = o;
    const started = JetStreamCollector.start({ ...opts, durable, codec, logger });
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      started.then(
        async (c) => {
          await c.close();
          return 'connected';
        },
        (err: Error) => err.message,
      ),
      new Promise<string>((r) => (timer = setTimeout(() => r('still trying'), 8000))),
    ]);
    clearTimeout(timer);
    return r;
  };

  it('a wrong token is refused by the server', async () => {
    expect(await refused(from({ 'token-file': file('bad-token', 'wrong\n') }), 'bad-token')).toMatch(/authoriz/i);
  }, 20_000);

  it('without a client certificate, or with a CA that does not sign the server, TLS fails', async () => {
    expect(await refused(from({ 'tls-cert': '', 'tls-key': '' }), 'no-cert')).not.toBe('connected');
    expect(await refused(from({ 'tls-ca': certs.rogueCert }), 'rogue-ca')).not.toBe('connected');
  }, 30_000);

  it('clear text asked for (no TLS flags, --insecure-plaintext aside) never reaches a TLS server in the clear', async () => {
    const o = from({ 'tls-ca': '', 'tls-cert': '', 'tls-key': '' });
    expect(o.tls).toBeUndefined();
    expect(await refused(o, 'clear')).not.toBe('connected');
  }, 20_000);
});
