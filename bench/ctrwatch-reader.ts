/**
 * The reading process of the container benchmarks: runs `ctrwatch run` as its
 * child with stdout piped, as a log shipper would, and stamps every line with
 * the CLOCK_MONOTONIC time (process.hrtime) at which its chunk arrived here.
 * It does nothing else, so that its event loop is free when a line comes (the
 * bench process, busy starting containers, would delay the reading).
 *
 *   node dist/bench/ctrwatch-reader.js --stderr FILE [--bin PATH] -- [ctrwatch run options]
 *
 * --bin: the ctrwatch to run (another built tree's bin/ctrwatch); this tree's by default.
 *
 * stdout: one line per ctrwatch line, `<arrival ns>\t<the line>`; ctrwatch's
 * stderr goes to FILE. SIGTERM/SIGINT are passed on; exits with ctrwatch's code.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

function main(): void {
  const argv = process.argv.slice(2);
  const sep = argv.indexOf('--');
  const own = sep >= 0 ? argv.slice(0, sep) : argv;
  const rest = sep >= 0 ? argv.slice(sep + 1) : [];
  const i = own.indexOf('--stderr');
  const errFile = i >= 0 ? own[i + 1] : '/dev/null';
  const errFd = openSync(errFile, 'w');
  const b = own.indexOf('--bin');
  const bin = b >= 0 ? own[b + 1] : join(__dirname, '..', '..', 'bin', 'ctrwatch');
  const child = spawn(process.execPath, [bin, 'run', ...rest], { stdio: ['ignore', 'pipe', errFd] });
  closeSync(errFd);
  let partial = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    const t = process.hrtime.bigint().toString();
    const text = partial + chunk;
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    if (!lines.length) return;
    writeSync(1, lines.map((l) => `${t}\t${l}\n`).join(''));
  });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => child.kill(sig));
  // 'close': after stdout has ended, so no line is left behind.
  child.on('close', (code, signal) => {
    if (partial) writeSync(1, `${process.hrtime.bigint()}\t${partial}\n`);
    process.exit(code ?? (signal ? 128 : 1));
  });
}

main();
