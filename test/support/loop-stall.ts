import { expect } from 'vitest';

/**
 * Names what blocked a test worker's event loop for 20 s or more. Vitest's worker fails the
 * whole run ("Timeout calling onTaskUpdate") when a call to the main process gets no answer in
 * 60 s, and an answer cannot be read while synchronous code runs: this line says where it ran.
 */
const STALL_MS = 20_000;
const key = Symbol.for('ctrwatch.loopStall');
const g = globalThis as { [key]?: boolean };
if (!g[key]) {
  g[key] = true;
  // hrtime: tests that fake Date would fake the gap
  let last = process.hrtime.bigint();
  setInterval(() => {
    const now = process.hrtime.bigint();
    const gap = Number(now - last) / 1e6;
    last = now;
    if (gap < STALL_MS) return;
    const { currentTestName, testPath } = expect.getState();
    process.stderr.write(
      `loop-stall: the test worker's event loop was blocked ${Math.round(gap / 1000)} s, until ${new Date().toISOString()}, ` +
        `in ${currentTestName ? `"${currentTestName}"` : 'a hook'} (${testPath ?? 'no file'})\n`,
    );
  }, 1_000).unref();
}
