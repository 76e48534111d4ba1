import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRunKernelTests, scaled } from '../support/env';
import { runtimeReady } from '../support/runtimes';
import { CtrwatchProcess, type Ev } from '../support/ctrwatch';
import { ctrwatch } from '../support/run-cli';
import { RUNTIMES, RuntimeLab, type RuntimeName, type Started } from '../support/runtimes';

const KIND: Record<RuntimeName, string> = { runc: 'RUNC', crun: 'CRUN', containerd: 'CONTAINERD', podman: 'PODMAN', docker: 'DOCKER' };
const IMAGE: Partial<Record<RuntimeName, string>> = { podman: 'localhost/busybox:latest', docker: 'localhost/busybox:latest' };
const PRIVATE = ['PID', 'NET', 'MNT', 'IPC', 'UTS'];

describe.runIf(canRunKernelTests)('container records from real runtimes (ctrwatch run)', () => {
  let lab: RuntimeLab;
  let cw: CtrwatchProcess;
  beforeAll(async () => {
    lab = await RuntimeLab.open();
    cw = await CtrwatchProcess.start();
  });
  afterAll(async () => {
    await cw?.stop();
    await lab?.close();
  });

  const once = (kind: string, id: string) => {
    const evs = cw.of(kind, id);
    expect(evs, `${kind} events for ${id}`).toHaveLength(1);
    return evs[0];
  };

  for (const rt of RUNTIMES) {
    describe.runIf(runtimeReady(rt))(rt, () => {
      it('gives one created, one started, one exited record, and an exec into it', async () => {
        const c = await lab.start(rt, { args: ['/bin/sleep', '300'] });
        await cw.waitFor((e) => e.containerStarted?.container?.id === c.id);
        const started = once('containerStarted', c.id);
        const k = started.container;
        expect(k.runtime).toBe(KIND[rt]);
        expect(k.initPid).toBe(c.initPid);
        expect(k.user).toBe('0');
        expect(k.privileged ?? false).toBe(false);
        expect(k.existing ?? false).toBe(false);
        for (const ns of PRIVATE) expect(k.hostNamespaces ?? []).not.toContain(ns);
        if (IMAGE[rt]) expect(k.image).toBe(IMAGE[rt]);
        if (rt === 'docker' || rt === 'podman') expect(k.name).toBe(c.name);
        expect(k.cgroupPath).toContain(c.id);
        expect(k.mounts?.some((m: Ev) => m.destination === '/proc')).toBe(true);
        expect(started.process.argv).toEqual(['/bin/sleep', '300']);
        expect(started.process.pid).toBe(c.initPid);
        const created = once('containerCreated', c.id);
        expect(created.container.bundle).toBeTruthy();

        await lab.exec(c, ['/bin/true', 'exec-probe']);
        const ex = await cw.waitFor((e) => e.containerExec?.container?.id === c.id);
        expect(ex.containerExec.process.argv).toEqual(['/bin/true', 'exec-probe']);

        await lab.stop(c);
        await cw.waitFor((e) => e.containerExited?.container?.id === c.id);
        const exited = once('containerExited', c.id);
        expect(exited.container.initPid).toBe(c.initPid);
        expect(exited.exitCode).toBeGreaterThan(0); // killed
        // exec into it was not a new container
        expect(cw.events.filter((e) => e.containerCreated?.container?.initPid === ex.containerExec.process.pid)).toEqual([]);
      });

      it('reports a privileged container sharing the host pid and net namespaces with / mounted', async () => {
        const c = await lab.start(rt, {
          args: ['/bin/sleep', '300'],
          privileged: true,
          hostPid: true,
          hostNet: true,
          mounts: [{ source: '/', destination: '/host' }],
        });
        try {
          await cw.waitFor((e) => e.containerStarted?.container?.id === c.id);
          const k = once('containerStarted', c.id).container;
          expect(k.privileged).toBe(true);
          expect(k.hostNamespaces).toEqual(expect.arrayContaining(['PID', 'NET']));
          expect(k.hostNamespaces).not.toContain('MNT');
          expect(k.mounts).toEqual(expect.arrayContaining([expect.objectContaining({ source: '/', destination: '/host' })]));
          expect(k.capabilities).toContain('CAP_SYS_ADMIN');
        } finally {
          await lab.stop(c);
        }
      });
    });
  }

  it('a container that lives under 10 ms still gets its full record', async () => {
    const c = await lab.start('runc', { args: ['/bin/true'], detach: false });
    expect(c.exitCode).toBe(0);
    await cw.waitFor((e) => e.containerExited?.container?.id === c.id);
    const started = once('containerStarted', c.id);
    expect(started.container.bundle).toBe(c.bundle);
    expect(started.container.mounts?.length).toBeGreaterThan(3);
    expect(started.process.argv).toEqual(['/bin/true']);
    const exited = once('containerExited', c.id);
    expect(exited.exitCode ?? 0).toBe(0);
    const ms =
      (BigInt(cw.of('containerExited', c.id).length && cw.events.find((e) => e.containerExited?.container?.id === c.id)!.timeUnixNano) -
        BigInt(cw.events.find((e) => e.containerStarted?.container?.id === c.id)!.timeUnixNano)) /
      1_000_000n;
    expect(Number(ms)).toBeLessThan(1000);
  });

  it(
    '50 containers started at once give 50 of each record, none missed, none duplicated',
    async () => {
      const starting: Promise<Started>[] = [];
      for (let i = 0; i < 50; i++) {
        const p = lab.start('runc', { args: ['/bin/true'], detach: false, timeoutMs: 120_000 });
        p.catch(() => undefined); // handled: Promise.all below rethrows it
        starting.push(p);
        // Each start forks this worker, slow under emulation: 50 in one go held its event loop for
        // most of a minute, and vitest fails a run whose worker calls go unanswered for 60 s.
        await new Promise((res) => setImmediate(res));
      }
      const all = await Promise.all(starting);
      expect(all.every((c) => c.exitCode === 0)).toBe(true);
      for (const c of all) await cw.waitFor((e) => e.containerExited?.container?.id === c.id, 20_000);
      for (const c of all) {
        expect(cw.of('containerCreated', c.id)).toHaveLength(1);
        expect(cw.of('containerStarted', c.id)).toHaveLength(1);
        expect(cw.of('containerExited', c.id)).toHaveLength(1);
      }
    },
    scaled(240_000),
  );

  it('a bare unshare + chroot is a container (UNKNOWN); a plain unshare -m is not', async () => {
    const rootfs = join(lab.dir, 'bare-rootfs');
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
    const tag = `bare-${process.pid}`;
    const r = spawnSync('unshare', ['--fork', '--pid', '--mount', 'chroot', rootfs, '/bin/busybox', 'sh', '-c', `exit 4`, tag]);
    expect(r.status).toBe(4);
    const st = await cw.waitFor((e) => e.containerStarted?.process?.argv?.includes(tag));
    const id = st.containerStarted.container.id;
    expect(st.containerStarted.container.runtime).toBe('UNKNOWN');
    expect(id).toMatch(/^mntns-\d+-\d+$/);
    const ex = await cw.waitFor((e) => e.containerExited?.container?.id === id);
    expect(ex.containerExited.exitCode, JSON.stringify(cw.events.filter((e) => JSON.stringify(e).includes(id)))).toBe(4);
    const created = cw.of('containerCreated', id);
    expect(created).toHaveLength(1);
    expect(created[0].process.argv[0]).toBe('unshare');

    const tag2 = `plain-${process.pid}`;
    execFileSync('unshare', ['-m', '/bin/sh', '-c', 'true', tag2]);
    execFileSync('/bin/true', [`${tag2}-after`]);
    await new Promise((res) => setTimeout(res, 300));
    expect(cw.events.filter((e) => JSON.stringify(e).includes(tag2))).toEqual([]);
  });

  it('a hostile config.json costs that metadata and a logged reason, never the record', async () => {
    // runc follows a symlinked config.json; the sensor must not (a container could plant one).
    const dir = mkdtempSync(join(lab.dir, 'hostile-'));
    const bundle = join(dir, 'bundle');
    mkdirSync(join(bundle, 'rootfs/bin'), { recursive: true });
    copyFileSync('/bin/busybox', join(bundle, 'rootfs/bin/busybox'));
    execFileSync('runc', ['spec'], { cwd: dir });
    const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    spec.process.terminal = false;
    spec.process.args = ['/bin/busybox', 'true'];
    spec.root = { path: join(bundle, 'rootfs') };
    writeFileSync(join(dir, 'real.json'), JSON.stringify(spec));
    symlinkSync(join(dir, 'real.json'), join(bundle, 'config.json'));
    const id = `cwt-hostile-${process.pid}`;
    try {
      execFileSync('runc', ['run', '--bundle', bundle, id], { stdio: 'ignore', timeout: 30_000 });
      const st = await cw.waitFor((e) => e.containerStarted?.container?.id === id);
      expect(st.containerStarted.container.runtime).toBe('RUNC');
      expect(st.containerStarted.container.bundle).toBe(bundle);
      expect(st.containerStarted.container.mounts).toBeUndefined();
      await cw.waitFor((e) => e.containerExited?.container?.id === id);
      expect(cw.stderr.some((l) => l.includes(id) && l.includes('symlink'))).toBe(true);
    } finally {
      spawnSync('runc', ['delete', '-f', id]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.runIf(canRunKernelTests)('containers that ran before the sensor', () => {
  it(
    'are reported as existing with full metadata, again after a restart, never as created or started anew',
    async () => {
      const lab = await RuntimeLab.open();
      let cw: CtrwatchProcess | undefined;
      try {
        // sleeps that outlive the test however slow the node (they are stopped at its end)
        const d = await lab.start('docker', { args: ['/bin/sleep', '86400'] });
        const r = await lab.start('runc', { args: ['/bin/sleep', '86400'] });
        for (let round = 0; round < 2; round++) {
          cw = await CtrwatchProcess.start();
          for (const c of [d, r]) {
            const evs = cw.of('containerStarted', c.id);
            expect(evs, `existing ${c.runtime} in round ${round}`).toHaveLength(1);
            expect(evs[0].container.existing).toBe(true);
            expect(evs[0].container.initPid).toBe(c.initPid);
            expect(cw.of('containerCreated', c.id)).toEqual([]);
          }
          expect(cw.of('containerStarted', d.id)[0].container.image).toBe('localhost/busybox:latest');
          expect(cw.of('containerStarted', r.id)[0].container.runtime).toBe('RUNC');
          expect(cw.of('containerStarted', r.id)[0].container.bundle).toBe(r.bundle);
          const ready = cw.events.findIndex((e) => 'sensorReady' in e);
          expect(ready).toBe(0);
          await cw.stop();
          cw = undefined;
        }
      } finally {
        await cw?.stop();
        await lab.close();
      }
    },
    scaled(180_000),
  );
});

describe.runIf(canRunKernelTests)('ctrwatch ps', () => {
  it(
    'lists the running containers with no daemon asked, as --json and as a table',
    async () => {
      const lab = await RuntimeLab.open();
      try {
        // sleeps that outlive the test however slow the node (they are stopped at its end)
        const p = await lab.start('podman', { args: ['/bin/sleep', '86400'] });
        const r = await lab.start('runc', { args: ['/bin/sleep', '86400'], hostNet: true });
        const ps = async (args: string[]) => {
          const o = await ctrwatch(['ps', ...args]);
          expect(o.code, o.stderr).toBe(0);
          return o.stdout;
        };
        const list = (await ps(['--json']))
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        const pp = list.find((c) => c.id === p.id);
        const rr = list.find((c) => c.id === r.id);
        expect(pp).toMatchObject({
          runtime: 'PODMAN',
          name: p.name,
          image: 'localhost/busybox:latest',
          initPid: p.initPid,
          existing: true,
        });
        expect(rr).toMatchObject({ runtime: 'RUNC', initPid: r.initPid, bundle: r.bundle });
        expect(rr.hostNamespaces).toContain('NET');
        const table = await ps([]);
        expect(table.split('\n')[0]).toMatch(/^CONTAINER ID\s+RUNTIME\s+NAME/);
        expect(table).toContain(r.id);
        await lab.stop(r);
        const after = await ps(['--json']);
        expect(after).not.toContain(`"${r.id}"`);
        expect(after).toContain(p.id);
      } finally {
        await lab.close();
      }
    },
    scaled(120_000),
  );
});
