// Process start times: /proc gives them in clock ticks, the kernel in ns. Both sides of a
// comparison are cut to the coarser unit.

/** CLK_TCK: 100 on every Linux architecture that matters. */
export const TICKS_PER_SECOND = 100;

const TICK_NS = 1_000_000_000n / BigInt(TICKS_PER_SECOND);

/** Start time from /proc/<pid>/stat (ticks since boot) in ns. */
export function ticksToNs(ticks: number): bigint {
  return (BigInt(ticks) * 1_000_000_000n) / BigInt(TICKS_PER_SECOND);
}

/** Start times of the same process agree to /proc's clock tick. */
export function sameStart(a: bigint, b: bigint): boolean {
  // Exact first: two kernel times need no division (the common case on the hot path).
  return a === b || a / TICK_NS === b / TICK_NS;
}
