import { existsSync } from 'node:fs';

/** Kernel tests need root and a kernel with BTF; without them only unit tests run. */
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
export const hasBtf = existsSync('/sys/kernel/btf/vmlinux');

/** CI=true (as CI sets it): a test that cannot run is a failure there, never a quiet skip. */
export const inCi = process.env.CI === 'true';

export class MissingPrerequisiteError extends Error {
  constructor(what: string) {
    super(`CI=true and a real-kernel or real-runtime test cannot run: ${what}`);
    this.name = 'MissingPrerequisiteError';
  }
}

/**
 * Whether a prerequisite holds, for describe.runIf / it.skipIf. Outside CI a
 * missing one skips (a developer without root still runs the unit tests);
 * under CI=true it throws while the file is collected, so the run fails and
 * names what was missing.
 */
export function requires(ok: boolean, what: string): boolean {
  if (!ok && inCi) throw new MissingPrerequisiteError(what);
  return ok;
}

export const canRunKernelTests = requires(
  isRoot && hasBtf,
  `root and BTF (root: ${isRoot}; /sys/kernel/btf/vmlinux ${hasBtf ? 'present' : 'missing'})`,
);
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
