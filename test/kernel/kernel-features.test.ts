import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRunKernelTests, scaled } from '../support/env';
import { CtrwatchProcess } from '../support/ctrwatch';
import { ctrwatch } from '../support/run-cli';

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
    for (const h of [
      'sched_process_fork',
      'sched_process_exec',
      'sched_process_exit',
      'cgroup_mkdir',
      'sys_enter_setns',
      'sys_exit_setns',
      'sys_enter_pivot_root',
      'sys_enter_openat',
      'sys_enter_connect',
    ]) {
      expect(ready.hooks, h).toContain(h);
    }
    expect(ready.hooks.includes('sys_enter_init_module')).toBe(hasModules);
    expect(new Set(ready.hooks).size).toBe(ready.hooks.length);
  });

  it('doctor prints the kernel features and one warn line per degraded rule', async () => {
    const r = await ctrwatch(['doctor']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ok {4}kernel {5}\S+: btf, ringbuf, tracing/m);
    const degraded = r.stdout.split('\n').filter((l) => l.startsWith('warn  degraded'));
    if (hasModules) expect(degraded.filter((l) => l.includes('escape.module-load'))).toEqual([]);
    else expect(degraded).toContainEqual(expect.stringMatching(/escape\.module-load: no sys_enter_init_module .*not seen/));
  });

  it('version names the sensor, the BPF object built in, the schema and the features probed', async () => {
    const r = await ctrwatch(['version', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const v = JSON.parse(r.stdout);
    const obj = readFileSync(join(__dirname, '../../bpf/.output/ctrwatch.bpf.o'));
    expect(v.bpfObject).toBe(createHash('sha256').update(obj).digest('hex').slice(0, 16));
    const pkg = /^package (\S+);/m.exec(readFileSync(join(__dirname, '../../proto/ctrwatch/v1/events.proto'), 'utf8'))![1];
    expect(v.schema).toBe(pkg);
    expect(v.sensor).toBe(JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')).version);
    expect(v.features).toMatchObject({ btf: true, ringbuf: true, tracing: true });
  });

  it(
    "attaches through a private tracefs: the node's /sys/kernel/tracing is left alone, even while someone flaps it",
    async () => {
      const mounts = () =>
        readFileSync('/proc/self/mounts', 'utf8')
          .split('\n')
          .filter((l) => / tracefs /.test(l))
          .sort();
      const before = mounts();
      const nodeHas = before.some((l) => l.split(' ')[1] === '/sys/kernel/tracing');
      // Another process mounting and unmounting the node's tracefs over and over (left as found).
      const flap = nodeHas
        ? undefined
        : spawn('sh', ['-c', 'for i in $(seq 300); do mount -t tracefs nodev /sys/kernel/tracing; umount /sys/kernel/tracing; done'], {
            stdio: 'ignore',
          });
      try {
        for (let i = 0; i < 3; i++) {
          const r = await ctrwatch(['doctor']);
          expect(r.stdout, r.stderr).toMatch(/^ok {4}bpf /m);
        }
      } finally {
        flap?.kill();
        // it may have ended already, and 'exit' is not emitted twice
        if (flap && flap.exitCode === null && flap.signalCode === null) await new Promise((res) => flap.once('exit', res));
        if (!nodeHas) spawnSync('umount', ['/sys/kernel/tracing'], { stdio: 'ignore' });
      }
      expect(mounts()).toEqual(before);
      expect(readdirSync('/run').filter((n) => n.startsWith('ctrwatch-tracefs-'))).toEqual([]);
      // three doctors, each given 60 s (scaled): a 5.10 VM under emulation took over 80 s each
    },
    scaled(200_000),
  );
});
