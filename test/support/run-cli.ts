// Runs a command to its end without blocking the test worker: a spawnSync that outlasts
// vitest's 60 s worker-to-runner call timeout (a doctor under emulation takes 20-80 s) makes
// vitest report an unhandled error and exit 1 with every test passed.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { scaled } from './env';

export interface Ran {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
}

/** `cmd args…` to its exit, killed after `timeoutMs` (scaled 60 s by default). */
export function run(cmd: string, args: string[], o: RunOptions = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: o.env ?? process.env, uid: o.uid, gid: o.gid });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => out.push(b));
    p.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => p.kill('SIGKILL'), o.timeoutMs ?? scaled(60_000));
    p.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.once('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
}

export const BIN = join(__dirname, '../../bin/ctrwatch');

/** `ctrwatch args…` with this node. */
export const ctrwatch = (args: string[], o: RunOptions = {}): Promise<Ran> => run(process.execPath, [BIN, ...args], o);
