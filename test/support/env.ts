import { existsSync } from 'node:fs';

/** Kernel tests need root and a kernel with BTF; without them only unit tests run. */
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
export const hasBtf = existsSync('/sys/kernel/btf/vmlinux');
export const canRunKernelTests = isRoot && hasBtf;

/**
 * Multiplies every timeout of the tests and their support (commands, daemon start, waits for
 * events, vitest's test and hook timeouts): CTRWATCH_TEST_TIME_SCALE=5 on a slow machine such as
 * a VM under software emulation. Latency the tests assert on is not scaled.
 */
export const timeScale = parseTimeScale(process.env.CTRWATCH_TEST_TIME_SCALE);

function parseTimeScale(v: string | undefined): number {
  if (v === undefined || v === '') return 1;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 1 || n > 100) throw new Error(`CTRWATCH_TEST_TIME_SCALE=${v}: want a number from 1 to 100`);
  return n;
}

/** ms scaled by CTRWATCH_TEST_TIME_SCALE. */
export const scaled = (ms: number): number => Math.round(ms * timeScale);
