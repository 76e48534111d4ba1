// Shared by the delivery tests: child processes (TypeScript run by vite-node), waiting, the
// collector's output read back, certificates made with openssl.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { killTrackedAndWait, track } from '../support/children';

export const ROOT = path.resolve(__dirname, '..', '..');
const VITE_NODE = path.join(ROOT, 'node_modules', '.bin', 'vite-node');

export interface Proc {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: string[];
  exited: Promise<number | null>;
  /** The first line (parsed) for which pred holds, waiting up to ms. */
  waitLine(pred: (l: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
}

export function spawnTs(script: string, arg: unknown, env: Record<string, string> = {}): Proc {
  const child = spawn(VITE_NODE, [path.join(__dirname, script), JSON.stringify(arg)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  const lines: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  let buf = '';
  const waiters: (() => void)[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        stderr.push(`stdout: ${line}`);
      }
      for (const w of waiters.splice(0)) w();
    }
  });
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      for (const w of waiters.splice(0)) w();
      resolve(code);
    }),
  );
  const waitLine = (pred: (l: Record<string, unknown>) => boolean, ms = 30_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const t = setTimeout(
        () =>
          reject(
            new Error(
              `${script}: no matching line in ${ms} ms; last: ${JSON.stringify(lines.at(-1))}; stderr: ${stderr.join('').slice(-2000)}`,
            ),
          ),
        ms,
      );
      const check = () => {
        const l = lines.find(pred);
        if (l) {
          clearTimeout(t);
          return resolve(l);
        }
        if (child.exitCode !== null || child.signalCode !== null) {
          clearTimeout(t);
          return reject(
            new Error(
              `${script} exited (${child.exitCode ?? child.signalCode}) before a matching line; stderr: ${stderr.join('').slice(-2000)}`,
            ),
          );
        }
        waiters.push(check);
      };
      check();
    });
  return { child, lines, stderr, exited, waitLine };
}

/** SIGKILL every child still running (afterEach). */
export async function killAll(): Promise<void> {
  await killTrackedAndWait();
}

const dirs: string[] = [];

export function tmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `ctrwatch-${prefix}-`));
  dirs.push(d);
  return d;
}

/** Remove the temporary directories made so far (afterAll). */
export function removeTmpDirs(): void {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until<T>(f: () => T | undefined | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Every JSON line the collector wrote for `node`, in file order. */
export function collected(outDir: string, node = 'node-a'): Record<string, unknown>[] {
  const dir = path.join(outDir, node);
  if (!fs.existsSync(dir)) return [];
  const files = fs
    .readdirSync(dir)
    .filter((f) => /^events-\d+\.jsonl$/.test(f))
    .sort();
  const out: Record<string, unknown>[] = [];
  for (const f of files)
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n'))
      if (line) out.push(JSON.parse(line) as Record<string, unknown>);
  return out;
}

/** The run marker and seq of a driver event ("<run>-<seq>" in the container name; stats by seq). */
export function runOf(ev: Record<string, unknown>): string {
  const c = ((ev.containerExec ?? ev.detection) as { container?: { name?: string } } | undefined)?.container?.name;
  if (c) return c.slice(0, c.lastIndexOf('-'));
  const counters = (ev.sensorStats as { counters?: Record<string, string> } | undefined)?.counters ?? {};
  return (
    Object.keys(counters)
      .find((k) => k.startsWith('run_'))
      ?.slice(4) ?? 'unknown'
  );
}

/** Counts of each "run/seq". */
export function tally(evs: Record<string, unknown>[]): Map<string, number> {
  const m = new Map<string, number>();
  // The sensors' events; what the collector writes itself (sensorSilent) has no seq.
  for (const e of evs.filter((x) => x.seq !== undefined)) {
    const k = `${runOf(e)}/${String(e.seq)}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

export interface Certs {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from another CA. */
  rogueCert: string;
  rogueKey: string;
}

/** A CA, a server certificate for localhost/127.0.0.1, a client certificate, and a rogue one. */
export function makeCerts(): Certs {
  const dir = tmpDir('certs');
  const p = (f: string) => path.join(dir, f);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ca = (name: string) =>
    ssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      p(`${name}.key`),
      '-out',
      p(`${name}.crt`),
    );
  const leaf = (name: string, caName: string, ext: string) => {
    ssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      p(`${name}.key`),
      '-out',
      p(`${name}.csr`),
    );
    fs.writeFileSync(p(`${name}.ext`), ext);
    ssl(
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p(`${caName}.crt`),
      '-CAkey',
      p(`${caName}.key`),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      p(`${name}.ext`),
      '-out',
      p(`${name}.crt`),
    );
  };
  ca('ca');
  ca('rogue-ca');
  leaf('server', 'ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  leaf('rogue', 'rogue-ca', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    rogueCert: p('rogue.crt'),
    rogueKey: p('rogue.key'),
  };
}
