import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRunKernelTests } from '../support/env';
import {
  runtimeReady,
  RUNTIMES,
  RuntimeLab,
  isAlive,
  namespaceOf,
  processesMentioning,
  processRef,
  type RuntimeName,
  type Started,
} from '../support/runtimes';

const CAP_SYS_ADMIN = 21n;

function capEff(pid: number): bigint {
  return BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]}`);
}

function hugetlbHierarchy(): string | undefined {
  return readFileSync('/proc/cgroups', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('hugetlb\t'))
    ?.split('\t')[1];
}

describe.runIf(canRunKernelTests)('RuntimeLab', () => {
  let lab: RuntimeLab;
  const hugetlbBefore = hugetlbHierarchy();
  const timings: { runtime: RuntimeName; what: string; ms: number }[] = [];
  const timed = async <T>(runtime: RuntimeName, what: string, fn: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await fn();
    } finally {
      timings.push({ runtime, what, ms: Math.round(performance.now() - t) });
    }
  };

  beforeAll(async () => {
    lab = await RuntimeLab.open();
    mkdirSync(join(lab.dir, 'shared'));
    writeFileSync(join(lab.dir, 'shared', 'marker'), 'from the host\n');
  });

  afterAll(async () => {
    await lab?.close(); // always, even when a test failed: it also undoes global cgroup state
    console.table(timings);
  });

  for (const runtime of RUNTIMES) {
    const av = { ok: runtimeReady(runtime) };
    const engine = runtime === 'docker' || runtime === 'podman';

    describe(runtime, () => {
      it.skipIf(!av.ok)('starts a detached container in its own pid namespace, execs in it, stops it', async () => {
        await timed(runtime, 'daemon + image import', () => lab.cli(runtime));
        const c = await timed(runtime, 'start', () =>
          lab.start(runtime, { args: ['/bin/sleep', '300'], restart: engine ? 'unless-stopped' : undefined }),
        );
        expect(c.runtime).toBe(runtime);
        expect(c.id).toMatch(engine ? /^[0-9a-f]{64}$/ : /^cwt-/);
        expect(c.image).toBe(runtime === 'runc' || runtime === 'crun' ? undefined : 'localhost/busybox:latest');
        expect(existsSync(`/proc/${c.initPid}`)).toBe(true);
        expect(readFileSync(`/proc/${c.initPid}/comm`, 'utf8')).toBe('sleep\n');
        expect(namespaceOf(c.initPid!, 'pid')).not.toBe(namespaceOf('self', 'pid'));
        expect(namespaceOf(c.initPid!, 'net')).not.toBe(namespaceOf('self', 'net'));

        const echo = await timed(runtime, 'exec', () => lab.exec(c, ['/bin/echo', 'hello']));
        expect(echo).toMatchObject({ code: 0, stdout: 'hello\n' });
        expect((await lab.exec(c, ['/bin/sh', '-c', 'exit 5'])).code).toBe(5);

        const init = processRef(c.initPid!)!;
        await timed(runtime, 'stop', () => lab.stop(c));
        expect(isAlive(init)).toBe(false);
        await lab.stop(c); // idempotent
      });

      it.skipIf(!av.ok)('starts a privileged container in the host pid and net namespaces with a bind mount', async () => {
        const c = await timed(runtime, 'start (privileged, host ns)', () =>
          lab.start(runtime, {
            args: ['/bin/sleep', '300'],
            privileged: true,
            hostPid: true,
            hostNet: true,
            mounts: [{ source: join(lab.dir, 'shared'), destination: '/shared', readonly: true }],
            annotations: { 'org.ctrwatch.test': 'lab' },
          }),
        );
        expect(namespaceOf(c.initPid!, 'pid')).toBe(namespaceOf('self', 'pid'));
        expect(namespaceOf(c.initPid!, 'net')).toBe(namespaceOf('self', 'net'));
        expect(namespaceOf(c.initPid!, 'mnt')).not.toBe(namespaceOf('self', 'mnt'));
        expect((capEff(c.initPid!) >> CAP_SYS_ADMIN) & 1n).toBe(1n);
        expect(await lab.exec(c, ['/bin/cat', '/shared/marker'])).toMatchObject({ code: 0, stdout: 'from the host\n' });
        expect((await lab.exec(c, ['/bin/sh', '-c', 'echo x > /shared/marker'])).code).not.toBe(0); // read-only
        if (c.bundle) {
          const config = JSON.parse(readFileSync(join(c.bundle, 'config.json'), 'utf8'));
          expect(config.annotations).toEqual({ 'org.ctrwatch.test': 'lab' });
        }
        await timed(runtime, 'stop', () => lab.stop(c));
      });

      it.skipIf(!av.ok)('runs a short-lived container to completion and reports its exit code', async () => {
        const c: Started = await timed(runtime, 'run to completion', () =>
          lab.start(runtime, { args: ['/bin/sh', '-c', 'echo out; exit 3'], detach: false }),
        );
        expect(c).toMatchObject({ runtime, exitCode: 3, stdout: 'out\n' });
        expect(c.initPid).toBeUndefined();
        expect((await lab.start(runtime, { args: ['/bin/true'], detach: false })).exitCode).toBe(0);
      });

      it.skipIf(!av.ok)('runs the entrypoint as spec.user', async () => {
        const spec = { args: ['/bin/sh', '-c', 'id -u; id -g'], detach: false, user: 4321 };
        if (runtime === 'containerd') {
          await expect(lab.start(runtime, spec)).rejects.toThrow(/--user/);
          return;
        }
        expect(await lab.start(runtime, spec)).toMatchObject({ exitCode: 0, stdout: '4321\n4321\n' });
      });
    });
  }

  it('close() leaves no daemon, shim, conmon, container, mount or temp dir behind', async () => {
    const running = await lab.start('runc', { args: ['/bin/sleep', '300'] }); // left for close() to remove
    const init = processRef(running.initPid!)!;
    const daemons = lab.daemons();
    const names = daemons.map((d) => d.name);
    if (RuntimeLab.available('containerd').ok) expect(names).toContain('containerd');
    if (RuntimeLab.available('docker').ok) expect(names).toEqual(expect.arrayContaining(['dockerd', 'dockerd/child']));
    const dir = lab.dir;

    await lab.close();
    await lab.close(); // idempotent

    expect(isAlive(init)).toBe(false);
    for (const d of daemons) expect(isAlive(d.process), `${d.name} pid ${d.process.pid}`).toBe(false);
    expect(processesMentioning(dir)).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
    expect(existsSync(dir)).toBe(false);
    expect(hugetlbHierarchy()).toBe(hugetlbBefore);
    await expect(lab.start('runc', { args: ['/bin/true'] })).rejects.toThrow(/closed/);
  });
});
