import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRunKernelTests } from '../support/env';
import { CtrwatchProcess, type Ev } from '../support/ctrwatch';
import { RuntimeLab, type Started } from '../support/runtimes';

/**
 * The file, mount, root and memory doors against a container that changes one
 * detail: every evasive form next to the textbook one, both from real
 * containers, and ordinary containers that must stay below MEDIUM.
 */

const LOUD = ['MEDIUM', 'HIGH', 'CRITICAL'];
const OWNED = [
  'escape.kernel-control-write',
  'escape.mount-cgroupfs',
  'escape.mount-device',
  'escape.chroot-host',
  'escape.process-memory-write',
  'escape.pidfd-getfd',
  'drift.exec-fileless',
];
const CORE_PATTERN = '/proc/sys/kernel/core_pattern';

interface HostMount {
  id: number;
  dev: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

function hostMounts(): HostMount[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [left, right] = l.split(' - ');
      const a = left.split(' ');
      const b = right.split(' ');
      return { id: Number(a[0]), dev: a[2], mountPoint: a[4], fsType: b[0], superOptions: (b[2] ?? '').split(',') };
    });
}

/** A cgroup v1 hierarchy of one controller that the host has mounted: fsmount of it reuses it. */
function v1Hierarchy(): { controller: string; releaseAgent: string } | undefined {
  for (const want of ['freezer', 'devices', 'pids', 'cpuset']) {
    const m = hostMounts().find(
      (x) => x.fsType === 'cgroup' && x.superOptions.includes(want) && x.superOptions.filter((o) => o !== 'rw').length === 1,
    );
    if (m) return { controller: want, releaseAgent: join(m.mountPoint, 'release_agent') };
  }
  return undefined;
}

describe.runIf(canRunKernelTests)('evasive escapes decided from kernel objects (ctrwatch run)', () => {
  let lab: RuntimeLab;
  let cw: CtrwatchProcess;
  let state: string;
  let bin: string;
  let esc: Started;
  const saved = new Map<string, string>();
  const hier = v1Hierarchy();

  /** Puts back every kernel control file this file opens, even after a failure. */
  const restore = () => {
    for (const [file, value] of saved) {
      try {
        if (readFileSync(file, 'utf8') !== value) writeFileSync(file, value.endsWith('\n') ? value : `${value}\n`);
      } catch {
        // reported by the test that changed it
      }
    }
  };

  beforeAll(async () => {
    for (const f of [CORE_PATTERN, ...(hier ? [hier.releaseAgent] : [])]) saved.set(f, readFileSync(f, 'utf8'));
    lab = await RuntimeLab.open();
    state = mkdtempSync(join(tmpdir(), 'cw-state-'));
    bin = mkdtempSync(join(lab.dir, 'evasion-'));
    execFileSync('gcc', ['-static', '-O2', '-o', join(bin, 'evasion'), join(__dirname, '../fixtures/bin/evasion.c')]);
    cw = await CtrwatchProcess.start(['--state-dir', state]);
    // The escaping container: privileged, the host's pid namespace, the host's / at /host.
    esc = await lab.start('runc', {
      args: ['/bin/sleep', '600'],
      privileged: true,
      hostPid: true,
      mounts: [
        { source: '/', destination: '/host' },
        { source: bin, destination: '/t' },
      ],
    });
  }, 120_000);
  afterAll(async () => {
    try {
      await cw?.stop();
      await lab?.close();
    } finally {
      restore();
      rmSync(state, { recursive: true, force: true });
    }
  });

  const waitDet = (rule: string, pred: (d: Ev) => boolean = () => true, ms = 10_000) => cw.detection(rule, pred, ms);
  const about = (c: Started) => (d: Ev) => d.container?.id === c.id;
  const run = async (c: Started, args: string[]) => {
    const r = await lab.exec(c, args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r;
  };

  it('kernel control files: the textbook open and a symlink, a long path, O_PATH and read-only reopen, openat2, an fsmount fd, a file handle', async () => {
    try {
      await run(esc, ['/t/evasion', 'open-write', CORE_PATTERN]);
      const plain = await waitDet('escape.kernel-control-write', (d) => about(esc)(d) && d.attributes.path === CORE_PATTERN);
      expect(plain).toMatchObject({ severity: 'CRITICAL', techniques: ['T1611'] });
      expect(plain.attributes).toMatchObject({ file: CORE_PATTERN, kind: 'core_pattern', api: 'openat' });

      await run(esc, ['/bin/sh', '-c', `ln -sf ${CORE_PATTERN} /tmp/evk-cp && /t/evasion open-write /tmp/evk-cp`]);
      expect(
        (await waitDet('escape.kernel-control-write', (d) => about(esc)(d) && d.attributes.path === '/tmp/evk-cp')).attributes.file,
      ).toBe(CORE_PATTERN);

      const long = `/proc/sys/kernel/${'./'.repeat(150)}core_pattern`;
      expect(long.length).toBeGreaterThan(256);
      await run(esc, ['/t/evasion', 'open-write', long]);
      expect(
        (await waitDet('escape.kernel-control-write', (d) => about(esc)(d) && d.attributes.path.startsWith('/proc/sys/kernel/././')))
          .attributes.file,
      ).toBe(CORE_PATTERN);

      const reopened = () =>
        cw.events.filter(
          (e) =>
            e.detection?.ruleId === 'escape.kernel-control-write' &&
            about(esc)(e.detection) &&
            /^\/proc\/self\/fd\/\d+$/.test(e.detection.attributes.path),
        );
      await run(esc, ['/t/evasion', 'reopen-path', CORE_PATTERN]);
      await waitDet('escape.kernel-control-write', (d) => about(esc)(d) && /^\/proc\/self\/fd\/\d+$/.test(d.attributes.path));
      await run(esc, ['/t/evasion', 'reopen-ro', CORE_PATTERN]);
      await cw.waitFor(() => reopened().length >= 2);
      expect(reopened().map((e) => e.detection.attributes.file)).toEqual([CORE_PATTERN, CORE_PATTERN]);

      await run(esc, ['/t/evasion', 'openat2-write', CORE_PATTERN]);
      expect((await waitDet('escape.kernel-control-write', (d) => about(esc)(d) && d.attributes.api === 'openat2')).severity).toBe(
        'CRITICAL',
      );

      // cgroup v1 by the new mount API, then release_agent opened relative to the mount fd.
      expect(hier, 'no single-controller cgroup v1 hierarchy mounted on this host').toBeDefined();
      await run(esc, ['/t/evasion', 'fsmount-cgroup', hier!.controller]);
      const ra = await waitDet('escape.kernel-control-write', (d) => about(esc)(d) && d.attributes.path === 'release_agent');
      expect(ra).toMatchObject({ severity: 'CRITICAL', attributes: { file: 'cgroup:/release_agent', kind: 'release_agent' } });
      expect((await waitDet('escape.mount-cgroupfs', (d) => about(esc)(d) && d.attributes.api === 'fsmount')).severity).toBe('HIGH');

      // release_agent by file handle: open_by_handle_at passes no path at all.
      const mnt = `/host${hier!.releaseAgent.slice(0, -'/release_agent'.length)}`;
      await run(esc, ['/t/evasion', 'handle-write', `/host${hier!.releaseAgent}`, mnt]);
      const byHandle = await waitDet('escape.kernel-control-write', (d) => about(esc)(d) && d.attributes.api === 'open_by_handle_at');
      expect(byHandle).toMatchObject({ severity: 'CRITICAL', attributes: { file: 'cgroup:/release_agent', path: '' } });
    } finally {
      restore();
    }
    for (const [file, value] of saved) expect(readFileSync(file, 'utf8'), file).toBe(value);
  });

  it("mounts: cgroup v1 by mount(2) and made writable by mount_setattr; the host's disk from a node made with mknod, by mount(2) and by fsmount", async () => {
    expect(hier).toBeDefined();
    await run(esc, [
      '/bin/sh',
      '-c',
      `mkdir -p /tmp/evk-cg && mount -t cgroup -o ${hier!.controller} cgroup /tmp/evk-cg && umount /tmp/evk-cg`,
    ]);
    const cg = await waitDet(
      'escape.mount-cgroupfs',
      (d) => about(esc)(d) && d.attributes.api === 'mount(2)' && d.attributes.target === '/tmp/evk-cg',
    );
    expect(cg.severity).toBe('HIGH');

    // A read-only cgroup mount made writable in place with mount_setattr.
    await run(esc, [
      '/bin/sh',
      '-c',
      `mkdir -p /tmp/evk-ro && mount -t cgroup -o ro,${hier!.controller} cgroup /tmp/evk-ro && /t/evasion setattr-rw /tmp/evk-ro && umount /tmp/evk-ro`,
    ]);
    expect((await waitDet('escape.mount-cgroupfs', (d) => about(esc)(d) && d.attributes.api === 'mount_setattr')).message).toMatch(
      /made writable/,
    );

    const root = hostMounts()
      .filter((m) => m.mountPoint === '/')
      .pop()!;
    const [major, minor] = root.dev.split(':');
    expect(Number(major), `host / is on ${root.dev} (${root.fsType}), not a block device`).toBeGreaterThan(0);
    await run(esc, [
      '/bin/sh',
      '-c',
      `mknod /tmp/evk-hd b ${major} ${minor} && mkdir -p /tmp/evk-m && mount -t ${root.fsType} /tmp/evk-hd /tmp/evk-m && umount /tmp/evk-m`,
    ]);
    const dev = await waitDet('escape.mount-device', (d) => about(esc)(d) && d.attributes.api === 'mount(2)');
    expect(dev).toMatchObject({
      severity: 'CRITICAL',
      attributes: { device: root.dev, hostDevice: 'true', fstype: root.fsType, target: '/tmp/evk-m' },
    });

    await run(esc, ['/bin/sh', '-c', `mkdir -p /tmp/evk-m2 && /t/evasion fsmount-dev /tmp/evk-hd ${root.fsType} /tmp/evk-m2`]);
    const nu = await waitDet('escape.mount-device', (d) => about(esc)(d) && d.attributes.api === 'fsmount');
    expect(nu).toMatchObject({ severity: 'CRITICAL', attributes: { device: root.dev, hostDevice: 'true' } });
  });

  it("roots: chroot into the host's / directly, through a symlink, by chroot('.') and through /proc/<host pid>/root; pivot_root onto it", async () => {
    await run(esc, ['/bin/chroot', '/host', '/bin/true']);
    const plain = await waitDet('escape.chroot-host', (d) => about(esc)(d) && d.attributes.path === '/host');
    expect(plain).toMatchObject({ severity: 'HIGH', attributes: { root: "the host's /", api: 'chroot' } });
    await run(esc, ['/bin/sh', '-c', 'ln -sfn /host /tmp/evk-h && chroot /tmp/evk-h /bin/true']);
    expect((await waitDet('escape.chroot-host', (d) => about(esc)(d) && d.attributes.path === '/tmp/evk-h')).severity).toBe('HIGH');
    await run(esc, ['/t/evasion', 'chroot-dot', '/host']);
    expect((await waitDet('escape.chroot-host', (d) => about(esc)(d) && d.attributes.path === '.')).severity).toBe('HIGH');
    // This test's own process is a host process (PID 1 may be out of reach in a sandbox).
    const hostRoot = `/proc/${process.pid}/root`;
    await run(esc, ['/bin/chroot', hostRoot, '/bin/true']);
    const viaProc = await waitDet('escape.chroot-host', (d) => about(esc)(d) && d.attributes.path === hostRoot);
    // That is the host's own mount of /, not a bind of it.
    expect(viaProc.attributes.sameMountAsHost).toBe('true');
    // A host directory that is not /: MEDIUM, also when the container's root is on the same disk (a runc bundle).
    await run(esc, ['/t/evasion', 'chroot-dot', '/host/etc']);
    const etc = await waitDet('escape.chroot-host', (d) => about(esc)(d) && d.attributes.path === '.' && d.severity === 'MEDIUM');
    expect(etc.attributes.root).toMatch(/^host filesystem \d+:\d+ \(\w+\) at \/etc$/);
    // pivot_root onto a bind of the host's /, from a mount namespace made inside the container.
    await run(esc, [
      '/bin/unshare',
      '-m',
      '/bin/sh',
      '-c',
      'mkdir -p /tmp/evk-pr && mount --bind /host /tmp/evk-pr && cd /tmp/evk-pr && pivot_root . mnt',
    ]);
    // A root change in a mount namespace of its own is a container nested in esc (its own id, made in esc).
    const inEsc = (d: Ev) => about(esc)(d) || d.container?.labels?.['ctrwatch.io/made-in'] === esc.id;
    const pivot = await waitDet('escape.chroot-host', (d) => inEsc(d) && d.attributes.api === 'pivot_root');
    expect(pivot.container.id.startsWith(`${esc.id}/`) || pivot.container.id === esc.id).toBe(true);
    expect(pivot).toMatchObject({ severity: 'HIGH', attributes: { path: '.', root: "the host's /" } });
  });

  it("another process's memory and fds: /proc/PID/mem, process_vm_writev and pidfd_getfd on a host process", async () => {
    const victim: ChildProcess = spawn(join(bin, 'evasion'), ['victim'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const line = await new Promise<string>((res, rej) => {
        createInterface({ input: victim.stdout! }).once('line', res);
        victim.once('exit', () => rej(new Error('victim exited')));
      });
      const [pid, addr] = line.split(' ');
      expect(Number(pid)).toBe(victim.pid);
      await run(esc, ['/t/evasion', 'mem', pid, addr]);
      const mem = await waitDet('escape.process-memory-write', (d) => about(esc)(d) && d.attributes.api.startsWith('openat '));
      expect(mem).toMatchObject({
        severity: 'CRITICAL',
        techniques: ['T1611'],
        attributes: { target: pid, api: `openat /proc/${pid}/mem` },
      });
      await run(esc, ['/t/evasion', 'pvw', pid, addr]);
      expect(
        (await waitDet('escape.process-memory-write', (d) => about(esc)(d) && d.attributes.api === 'process_vm_writev')).attributes,
      ).toMatchObject({ target: pid, result: '8' });
      await run(esc, ['/t/evasion', 'getfd', pid]);
      const fd = await waitDet('escape.pidfd-getfd', about(esc));
      expect(fd).toMatchObject({ severity: 'HIGH', attributes: { target: pid } });
    } finally {
      victim.kill('SIGKILL');
    }
  });

  it('an exec of a memfd and of a deleted file from a container', async () => {
    const c = await lab.start('runc', { args: ['/bin/sleep', '300'], mounts: [{ source: bin, destination: '/t' }] });
    try {
      await run(c, ['/t/evasion', 'memfd-exec']);
      expect((await waitDet('drift.exec-fileless', (d) => about(c)(d) && d.attributes.kind === 'memfd')).techniques).toEqual(['T1204.003']);
      await run(c, ['/t/evasion', 'deleted-exec']);
      expect((await waitDet('drift.exec-fileless', (d) => about(c)(d) && d.attributes.kind === 'deleted file')).severity).toBe('HIGH');
    } finally {
      await lab.stop(c);
    }
  });

  it('stays below MEDIUM for ordinary work: files, its own /proc/self/mem and children, a tmpfs, a chroot into its own subdirectory', async () => {
    const d = await lab.start('docker', { args: ['/bin/sleep', '300'], mounts: [{ source: bin, destination: '/t' }] });
    const r = await lab.start('runc', { args: ['/bin/sleep', '300'], privileged: true, mounts: [{ source: bin, destination: '/t' }] });
    try {
      const work = (tag: string) =>
        [
          `echo hi > /tmp/${tag}-x && cat /tmp/${tag}-x >/dev/null`,
          `mkdir -p /tmp/${tag}-r/sub && /t/evasion chroot-dot /tmp/${tag}-r`,
          '/t/evasion own',
        ].join(' && ');
      await run(r, ['/bin/sh', '-c', `${work('evk-r')} && mkdir -p /tmp/evk-tm && mount -t tmpfs none /tmp/evk-tm && umount /tmp/evk-tm`]);
      // docker's default seccomp profile may refuse pidfd_getfd: only the quiet matters there.
      await lab.exec(d, ['/bin/sh', '-c', work('evk-d')]);
      await lab.exec(d, ['/bin/sh', '-c', 'cat /proc/self/mem >/dev/null 2>&1; true']);
      // A marker the sensor must have seen after the work, so that late findings would be here.
      await run(r, ['/t/evasion', 'open-write', '/proc/self/mem']);
      await cw
        .waitFor((e) => e.containerExec?.container?.id === r.id && JSON.stringify(e).includes('/proc/self/mem'), 10_000)
        .catch(() => undefined);
      await new Promise((res) => setTimeout(res, 1000));
      for (const c of [d, r]) {
        const loud = cw.events.filter(
          (e) => e.detection && about(c)(e.detection) && OWNED.includes(e.detection.ruleId) && LOUD.includes(e.detection.severity),
        );
        expect(
          loud.map((e) => `${e.detection.ruleId}: ${e.detection.message}`),
          c.runtime,
        ).toEqual([]);
      }
      // The sensor did see this container's work (a finding from it would have had time to arrive).
      expect(cw.events.some((e) => e.containerExec?.container?.id === r.id)).toBe(true);
    } finally {
      await lab.stop(d);
      await lab.stop(r);
    }
  });
});
