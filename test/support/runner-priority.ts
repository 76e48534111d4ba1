import { spawnSync } from 'node:child_process';
import { setPriority } from 'node:os';

/**
 * Under software emulation (test/vm/guest.sh sets CTRWATCH_TEST_RUNNER_NICE) the test worker
 * runs before what it starts: 50 containers starting at once held its event loop 48 s (27 s at
 * nice -10), close to the 60 s after which vitest fails a run whose worker calls go unanswered.
 * Its children (runtimes, the sensor) are reset to nice 0 at fork (SCHED_RESET_ON_FORK), so
 * they compete as they would on a node.
 */
const nice = process.env.CTRWATCH_TEST_RUNNER_NICE;
const key = Symbol.for('ctrwatch.runnerPriority');
const g = globalThis as { [key]?: boolean };
if (nice && !g[key]) {
  g[key] = true;
  const n = Number(nice);
  if (!Number.isInteger(n) || n < -20 || n > 0) throw new Error(`CTRWATCH_TEST_RUNNER_NICE must be an integer from -20 to 0, not ${nice}`);
  setPriority(n);
  const r = spawnSync('chrt', ['--reset-on-fork', '--other', '--pid', '0', String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`chrt --reset-on-fork on the test worker failed: ${r.stderr || r.error?.message}`);
}
