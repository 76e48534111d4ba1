// The console's HTTP(S) server: the page's files, the JSON query API and the live feed (server-
// sent events). Read-only: GET and HEAD only. The same rules as the collector's --listen: TLS
// with the collector's certificate (and client certificates when --tls-ca is given), bearer
// tokens from --token-file on every /api/ request, and clear text only on loopback unless
// --insecure-plaintext. The page's own files carry no data and load without a token (a browser
// cannot attach one to a page load); the page then sends it on each API call.

import { timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { CredentialsError, isLoopback, readTokens, type TlsFiles } from '../proto/credentials';
import { attackMatrix, getContainer, getEvent, listContainers, listEvents, meta, NotFoundError, sensors } from './api';
import { QueryError } from './filters';
import { openStream } from './stream';
import type { EventStore } from './store';

export interface ConsoleServerOptions {
  /** HOST:PORT (port 0: any free port). */
  listen: string;
  store: EventStore;
  logger: Logger;
  tls?: TlsFiles;
  tokenFile?: string;
  insecurePlaintext?: boolean;
}

export interface RunningConsole {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export class ConsoleError extends Error {
  override name = 'ConsoleError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

// Source tree (vitest) or dist/src/console (built): the project root holds src/console/page and node_modules.
const ROOT = path.resolve(__dirname, existsSync(path.join(__dirname, 'page')) ? '../..' : '../../..');
const PAGE = path.join(ROOT, 'src/console/page');
const MODULES = path.join(ROOT, 'node_modules');

/** Every file the server hands out: URL path → (file, type). Nothing else on disk is reachable. */
const FILES: Record<string, [string, string]> = {
  '/': [path.join(PAGE, 'index.html'), 'text/html; charset=utf-8'],
  '/app.js': [path.join(PAGE, 'app.js'), 'text/javascript; charset=utf-8'],
  '/views.js': [path.join(PAGE, 'views.js'), 'text/javascript; charset=utf-8'],
  '/app.css': [path.join(PAGE, 'app.css'), 'text/css; charset=utf-8'],
  '/vendor/lit-html.js': [path.join(MODULES, 'lit-html/lit-html.js'), 'text/javascript; charset=utf-8'],
  '/vendor/gridjs.umd.js': [path.join(MODULES, 'gridjs/dist/gridjs.umd.js'), 'text/javascript; charset=utf-8'],
  '/vendor/mermaid.min.css': [path.join(MODULES, 'gridjs/dist/theme/mermaid.min.css'), 'text/css; charset=utf-8'],
};

const HEADERS = {
  // No inline script, no other origin: a string from a container that reached the DOM as markup still could not run.
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** Live feeds open at once: each costs a filter check per stored event. */
const MAX_STREAMS = 64;

function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[3]) > 65535) throw new ConsoleError(`--ui ${listen}: expected HOST:PORT`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CredentialsError(`${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function send(res: http.ServerResponse, code: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { ...HEADERS, 'content-type': 'application/json; charset=utf-8', ...extra });
  res.end(text);
}

class Handler {
  private readonly tokens: Buffer[];
  private readonly files = new Map<string, Buffer>();
  readonly streams = new Set<http.ServerResponse>();

  constructor(private readonly o: ConsoleServerOptions) {
    this.tokens = o.tokenFile ? readTokens(o.tokenFile).map((t) => Buffer.from(`Bearer ${t}`)) : [];
    for (const [url, [file]] of Object.entries(FILES)) {
      try {
        this.files.set(url, readFileSync(file));
      } catch (err) {
        throw new ConsoleError(`console page file ${file} missing: reinstall (npm ci) or rebuild`, { cause: err });
      }
    }
  }

  private authorized(req: http.IncomingMessage): boolean {
    if (!this.tokens.length) return true;
    const got = req.headers.authorization;
    if (typeof got !== 'string') return false;
    const b = Buffer.from(got);
    return this.tokens.some((t) => t.length === b.length && timingSafeEqual(t, b));
  }

  readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, { error: 'the console is read-only: GET only' }, { allow: 'GET, HEAD' });
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://console');
    } catch {
      return send(res, 400, { error: 'bad request URL' });
    }
    const file = FILES[url.pathname];
    if (file) {
      res.writeHead(200, { ...HEADERS, 'content-type': file[1] });
      return void res.end(req.method === 'HEAD' ? undefined : this.files.get(url.pathname));
    }
    if (url.pathname === '/favicon.ico') return void res.writeHead(204, HEADERS).end();
    if (!url.pathname.startsWith('/api/')) return send(res, 404, { error: `no such page: ${url.pathname.slice(0, 80)}` });
    if (!this.authorized(req))
      return send(res, 401, { error: 'missing or wrong bearer token (authorization: Bearer <token>)' }, { 'www-authenticate': 'Bearer' });
    try {
      this.api(url, req, res);
    } catch (err) {
      if (err instanceof QueryError) return send(res, 400, { error: err.message });
      if (err instanceof NotFoundError) return send(res, 404, { error: err.message });
      this.o.logger.error({ err, path: url.pathname }, 'console query failed');
      send(res, 500, { error: 'query failed (see the collector log)' });
    }
  };

  private api(url: URL, req: http.IncomingMessage, res: http.ServerResponse): void {
    const db = this.o.store.db;
    const parts = url.pathname
      .slice('/api/'.length)
      .split('/')
      .map((s) => decodeURIComponent(s));
    const sp = url.searchParams;
    const now = this.o.store.now();
    const [what, a, b] = parts;
    if (what === 'events' && parts.length === 1) return send(res, 200, listEvents(db, sp));
    if (what === 'events' && parts.length === 2) return send(res, 200, getEvent(db, a, sp));
    if (what === 'containers' && parts.length === 1) return send(res, 200, listContainers(db, sp));
    if (what === 'containers' && parts.length === 3) return send(res, 200, getContainer(db, a, b, sp));
    if (what === 'attack' && parts.length === 1) return send(res, 200, attackMatrix(db, sp, now));
    if (what === 'sensors' && parts.length === 1) return send(res, 200, sensors(db, sp, now));
    if (what === 'meta' && parts.length === 1) return send(res, 200, meta(this.o.store, sp));
    if (what === 'stream' && parts.length === 1) {
      if (this.streams.size >= MAX_STREAMS)
        return send(res, 503, { error: `${MAX_STREAMS} live feeds are open already; try again later` }, { 'retry-after': '10' });
      return openStream(this.o.store, sp, req, res, HEADERS, this.streams);
    }
    send(res, 404, { error: `no such API: ${url.pathname.slice(0, 80)} (see docs/console-api.md)` });
  }
}

/** Start the console; resolves once it listens. Throws ConsoleError/CredentialsError on a bad option. */
export async function startConsole(o: ConsoleServerOptions): Promise<RunningConsole> {
  const { host, port } = parseListen(o.listen);
  const tls = !!(o.tls?.cert || o.tls?.key || o.tls?.ca);
  if (!tls && !o.insecurePlaintext && !isLoopback(host))
    throw new ConsoleError(
      `--ui ${o.listen}: clear text on an address other than loopback; give --tls-cert/--tls-key (and --tls-ca for client certificates) or pass --insecure-plaintext`,
    );
  if (tls && (!o.tls?.cert || !o.tls?.key)) throw new CredentialsError('the console needs --tls-cert and --tls-key for TLS');
  const h = new Handler(o);
  const server = tls
    ? https.createServer(
        {
          cert: readPem(o.tls!.cert!, '--tls-cert'),
          key: readPem(o.tls!.key!, '--tls-key'),
          ...(o.tls!.ca ? { ca: readPem(o.tls!.ca, '--tls-ca'), requestCert: true, rejectUnauthorized: true } : {}),
        },
        h.handle,
      )
    : http.createServer(h.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new ConsoleError(`--ui ${o.listen}: ${err.message}`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const url = `${tls ? 'https' : 'http'}://${hostPart}:${bound}/`;
  o.logger.child({ component: 'console' }).info({ url, tls, tokens: !!o.tokenFile }, 'console listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    port: bound,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        for (const s of h.streams) s.end();
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
