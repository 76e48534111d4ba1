import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRunKernelTests } from '../support/env';
import { CtrwatchProcess } from '../support/ctrwatch';

const BIN = join(__dirname, '../../bin/ctrwatch');
// A kernel built without modules has no /proc/modules and no init_module tracepoints.
const hasModules = existsSync('/proc/modules');

describe.runIf(canRunKernelTests)('what this kernel offers, as doctor and sensorReady say it', () => {
  let cw: CtrwatchProcess;
  beforeAll(async () => {
    cw = await CtrwatchProcess.start();
  });
  afterAll(async () => {
    await cw?.stop();
  });

  it('sensorReady lists the programs actually attached, not a fixed list', async () => {
    const ready = (await cw.waitFor((e) => 'sensorReady' in e)).sensorReady;
    for (const h of ['sched_process_fork', 'sched_process_exec', 'sched_process_exit', 'cgroup_mkdir', 'sys_enter_setns', 'sys_exit_setns', 'sys_enter_pivot_root', 'sys_enter_openat', 'sys_enter_connect']) {
      expect(ready.hooks, h).toContain(h);
    }
    expect(ready.hooks.includes('sys_enter_init_module')).toBe(hasModules);
    expect(new Set(ready.hooks).size).toBe(ready.hooks.length);
  });

  it('doctor prints the kernel features and one warn line per degraded rule', () => {
    const r = spawnSync(process.execPath, [BIN, 'doctor'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ok {4}kernel {5}\S+: btf, ringbuf, tracing/m);
    const degraded = r.stdout.split('\n').filter((l) => l.startsWith('warn  degraded'));
    if (hasModules) expect(degraded.filter((l) => l.includes('escape.module-load'))).toEqual([]);
    else expect(degraded).toContainEqual(expect.stringMatching(/escape\.module-load: no sys_enter_init_module .*not seen/));
  });
});
