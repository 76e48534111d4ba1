import { execFile, execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { scaled } from './env';

/** Result of one external command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  timeoutMs?: number;
  /** Exit codes that are not an error (default: only 0). */
  okCodes?: readonly number[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as this user and group. */
  uid?: number;
  gid?: number;
}

/** An external command failed, timed out or could not be started. Names the command and its stderr. */
export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly result: CommandResult | undefined,
    reason: string,
    options?: { cause?: unknown },
  ) {
    const stderr = result?.stderr.trim();
    super(`${argv.join(' ')}: ${reason}${stderr ? `\n${stderr}` : ''}`, options);
    this.name = 'CommandError';
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** A command's time limit: its own or the default, times CTRWATCH_TEST_TIME_SCALE. */
const limitOf = (opts: CommandOptions): number => scaled(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
const MAX_BUFFER = 16 * 1024 * 1024;

interface RawFailure {
  code?: number | string | null;
  killed?: boolean;
  signal?: NodeJS.Signals | null;
}

function settle(argv: string[], opts: CommandOptions, err: RawFailure | null, stdout: string, stderr: string): CommandResult {
  const timeoutMs = limitOf(opts);
  if (err && (err.killed || err.code === 'ETIMEDOUT')) {
    throw new CommandError(argv, { code: -1, stdout, stderr }, `timed out after ${timeoutMs} ms`, { cause: err });
  }
  if (err && err.signal) {
    throw new CommandError(argv, { code: -1, stdout, stderr }, `killed by ${err.signal}`, { cause: err });
  }
  if (err && typeof err.code === 'string') {
    throw new CommandError(argv, undefined, `could not start (${err.code})`, { cause: err });
  }
  const code = err && typeof err.code === 'number' ? err.code : 0;
  const result = { code, stdout, stderr };
  if (!(opts.okCodes ?? [0]).includes(code)) throw new CommandError(argv, result, `exited with ${code}`);
  return result;
}

/** Runs argv[0] with argv[1..] (no shell), with a timeout that SIGKILLs it. */
export function run(argv: string[], opts: CommandOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        timeout: limitOf(opts),
        killSignal: 'SIGKILL',
        maxBuffer: MAX_BUFFER,
        env: opts.env,
        cwd: opts.cwd,
        uid: opts.uid,
        gid: opts.gid,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        try {
          resolve(settle(argv, opts, err as RawFailure | null, stdout, stderr));
        } catch (e) {
          reject(e);
        }
      },
    );
  });
}

/**
 * Like run(), but the command's stdout and stderr go to logFile: for commands (runc create, crun
 * create) that hand their stdio to a container which outlives them. stderr in errors is the log's.
 */
export function runToFile(argv: string[], logFile: string, opts: CommandOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  const timeoutMs = limitOf(opts);
  const fd = openSync(logFile, 'a');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', fd, fd], env: opts.env });
    closeSync(fd);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const finish = (err: RawFailure | null) => {
      clearTimeout(timer);
      const log = readFileSync(logFile, 'utf8').slice(-4000);
      try {
        resolve(settle(argv, opts, err, '', log));
      } catch (e) {
        reject(e);
      }
    };
    child.on('error', (e: NodeJS.ErrnoException) => finish({ code: e.code ?? 'spawn error' }));
    child.on('exit', (code, signal) => finish(code === 0 ? null : { code, signal, killed: timedOut }));
  });
}

/** Synchronous twin of run(), for teardown that must also work from a process 'exit' handler. */
export function runSync(argv: string[], opts: CommandOptions = {}): CommandResult {
  const [file, ...args] = argv;
  try {
    const stdout = execFileSync(file, args, {
      timeout: limitOf(opts),
      killSignal: 'SIGKILL',
      maxBuffer: MAX_BUFFER,
      env: opts.env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return settle(argv, opts, null, stdout, '');
  } catch (e) {
    if (e instanceof CommandError) throw e;
    const raw = e as RawFailure & { status?: number | null; stdout?: string; stderr?: string };
    const failure: RawFailure = { code: typeof raw.code === 'string' ? raw.code : raw.status, signal: raw.signal };
    return settle(argv, opts, failure, String(raw.stdout ?? ''), String(raw.stderr ?? ''));
  }
}

/** Blocks the thread for ms milliseconds (teardown only). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Polls until cond() is true or timeoutMs passes; returns whether it became true. */
export function waitSync(cond: () => boolean, timeoutMs: number, stepMs = 50): boolean {
  const deadline = Date.now() + scaled(timeoutMs);
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= deadline) return false;
    sleepSync(stepMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Async twin of waitSync. */
export async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 5): Promise<boolean> {
  const deadline = Date.now() + scaled(timeoutMs);
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(stepMs);
  }
}

/** Every exit status: for commands whose exit code is the container's (run to completion, exec). */
export const ANY_CODE: readonly number[] = Array.from({ length: 256 }, (_, i) => i);

const GONE = /does not exist|not found|no such/i;

/** runSync for a delete: "no such container" counts as done, so deletes are idempotent. */
export function deleteSync(argv: string[], opts: CommandOptions = {}): void {
  const r = runSync(argv, { ...opts, okCodes: ANY_CODE });
  if (r.code !== 0 && !GONE.test(r.stderr)) throw new CommandError(argv, r, `exited with ${r.code}`);
}
