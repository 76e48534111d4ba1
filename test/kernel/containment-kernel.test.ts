import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropNamedHierarchy } from '../support/cgroup-v1';
import { buildImage } from '../support/runtime-image';
import { canRunKernelTests, scaled } from '../support/env';
import { CtrwatchProcess, type Ev } from '../support/ctrwatch';
import { isAlive, processRef, RuntimeLab, type Started } from '../support/runtimes';

/*
 * Containment in the kernel (policy action: kill on the escape rules): each
 * test does the escape for real from a real container and proves that its
 * EFFECT did not happen (the release agent never ran, core_pattern kept its
 * value, the command never ran on the host, the host disk's file was never
 * read), not only that a detection said KILLED. An ordinary container under
 * the same policy keeps running; dry-run kills nothing. Every piece of host
 * state touched (a cgroup v1 hierarchy, core_pattern, a loop device and its
 * mount) is put back.
 */

const CORE_PATTERN = '/proc/sys/kernel/core_pattern';
const KERNEL_RULES = [
  'escape.kernel-control-write',
  'escape.setns-host',
  'escape.mount-device',
  'escape.mount-cgroupfs',
  'escape.chroot-host',
  'escape.ptrace-host',
  'escape.process-memory-write',
  'escape.bpf-from-container',
  'sensor.signal',
];
const SIGWINCH = 28;
const SIGKILLED = 137; // 128 + SIGKILL: the shell that did the escape was killed

/**
 * Where BPF-LSM is active (Debian 12 and 13 kernels have it), the kernel refuses a call its LSM hooks see
 * with EPERM before it happens, and the caller lives on; elsewhere the caller is killed at
 * syscall exit. Either way the escape's effect must be absent: each test checks that itself.
 */
type LsmHook = 'lsm/file_open' | 'lsm/bpf' | 'lsm/task_kill';
const lsmDenies = (cw: CtrwatchProcess, hook: LsmHook) => !!cw.events.find((e) => e.sensorReady)?.sensorReady?.hooks?.includes(hook);
function stoppedInKernel(cw: CtrwatchProcess, hook: LsmHook, r: { code: number | null; stdout: string; stderr: string }, d: any): void {
  if (lsmDenies(cw, hook)) {
    expect(d.containment).toEqual({ outcome: 'DENIED', path: 'KERNEL', reason: 'refused with EPERM by BPF-LSM' });
    return;
  }
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(SIGKILLED);
  expect(r.stdout).not.toContain('survived');
  expect(d.containment).toEqual({ outcome: 'KILLED', path: 'KERNEL' });
}

async function sensorWith(dir: string, name: string, action: 'kill' | 'dry-run'): Promise<CtrwatchProcess> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, ['rules:', ...KERNEL_RULES.map((r) => `  ${r}: { action: ${action} }`), `stateDir: ${dir}`].join('\n'));
  return CtrwatchProcess.start(['--policy', file, '--stats-interval-s', '1']);
}

/** Stops the sensor, also one whose start was still under way when a hook timed out: a sensor left
 * running with a kill policy would act on the next tests. */
async function stopSensor(cw: CtrwatchProcess | undefined, starting: Promise<CtrwatchProcess> | undefined): Promise<void> {
  const p = cw ?? (await starting?.catch(() => undefined));
  await p?.stop();
}

/** The sensor stopped, the lab closed, core_pattern put back and the test's directory gone, whatever failed. */
async function tearDown(
  cw: CtrwatchProcess | undefined,
  starting: Promise<CtrwatchProcess> | undefined,
  lab: RuntimeLab | undefined,
  dir: string,
  corePattern: string,
): Promise<void> {
  try {
    await stopSensor(cw, starting);
    await lab?.close();
  } finally {
    if (readFileSync(CORE_PATTERN, 'utf8') !== corePattern) writeFileSync(CORE_PATTERN, corePattern);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A loop device with an ext4 filesystem holding one secret file, mounted on the host. */
function hostDisk(dir: string): { dev: string; minor: number; mnt: string; secret: string; remove(): void } {
  const img = join(dir, 'disk.img');
  const mnt = join(dir, 'disk');
  const secret = `secret-${process.pid}-${Date.now()}`;
  writeFileSync(img, Buffer.alloc(8 << 20));
  execFileSync('mkfs.ext4', ['-q', '-F', img]);
  const dev = execFileSync('losetup', ['--find', '--show', img]).toString().trim();
  mkdirSync(mnt);
  let mounted = false;
  const remove = () => {
    if (mounted) execFileSync('umount', [mnt]);
    mounted = false;
    execFileSync('losetup', ['-d', dev]);
    rmSync(img, { force: true });
  };
  try {
    execFileSync('mount', ['-t', 'ext4', dev, mnt]);
    mounted = true;
    writeFileSync(join(mnt, 'secret'), `${secret}\n`);
    copyFileSync('/bin/busybox', join(mnt, 'busybox'));
    execFileSync('sync');
  } catch (err) {
    remove();
    throw err;
  }
  return { dev, minor: Number(/loop(\d+)$/.exec(dev)![1]), mnt, secret, remove };
}

describe.runIf(canRunKernelTests)('containment in the kernel (policy action: kill on escape rules)', () => {
  let lab: RuntimeLab;
  let dir: string;
  let cw: CtrwatchProcess;
  let starting: Promise<CtrwatchProcess> | undefined;
  let disk: ReturnType<typeof hostDisk> | undefined;
  let diskDir: string;
  let diskError: Error | undefined;
  let cgMade = false;
  const HIERARCHY = `cwk-${process.pid}`;
  let esc: Started;
  let plain: Started;
  const corePattern = readFileSync(CORE_PATTERN, 'utf8');

  beforeAll(async () => {
    lab = await RuntimeLab.open();
    dir = mkdtempSync(join(tmpdir(), 'cw-killk-'));
    chmodSync(dir, 0o755);
    // Before the sensor starts: it reads the host's mounted devices then.
    diskDir = mkdtempSync(join(tmpdir(), 'cw-killk-disk-'));
    // A node without loop devices fails the disk test with the reason, not the whole file.
    try {
      disk = hostDisk(diskDir);
    } catch (err) {
      diskError = err as Error;
    }
    for (const b of ['guard-actions', 'ptrace-attach'])
      execFileSync('gcc', ['-static', '-O2', '-o', join(dir, b), join(__dirname, `../fixtures/bin/${b}.c`)]);
    cw = await (starting = sensorWith(dir, 'kill', 'kill'));
    // A named cgroup v1 hierarchy of the test's own, mounted on the host just for the container's
    // start (its bind of `dir` keeps a copy), then unmounted there: no other container made on this
    // node meanwhile holds on to it, and the host's real hierarchies are never touched.
    mkdirSync(join(dir, 'cg'));
    execFileSync('mount', ['-t', 'cgroup', '-o', `none,name=${HIERARCHY}`, 'cgroup', join(dir, 'cg')]);
    cgMade = true;
    mkdirSync(join(dir, 'cg', 'x'));
    try {
      esc = await lab.start('runc', {
        args: ['/bin/sleep', '600'],
        privileged: true,
        hostPid: true,
        mounts: [
          { source: dir, destination: '/k' },
          { source: '/', destination: '/host' },
        ],
      });
    } finally {
      execFileSync('umount', [join(dir, 'cg')]);
    }
    plain = await lab.start('runc', { args: ['/bin/sleep', '600'] });
  }, scaled(180_000));

  afterAll(async () => {
    // Every step runs whatever failed before it; the first failure is reported.
    const errors: unknown[] = [];
    const step = async (fn: () => unknown) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    await step(() => stopSensor(cw, starting));
    await step(() => lab?.close());
    await step(() => readFileSync(CORE_PATTERN, 'utf8') !== corePattern && writeFileSync(CORE_PATTERN, corePattern));
    await step(() => cgMade && dropNamedHierarchy(HIERARCHY));
    await step(() => disk?.remove());
    await step(() => rmSync(diskDir, { recursive: true, force: true }));
    await step(() => rmSync(dir, { recursive: true, force: true }));
    if (errors.length) throw errors[0];
  });

  const about = (c: Started) => (d: Ev) => d.container?.id === c.id;
  const killedInKernel = (d: Ev) => expect(d.containment).toEqual({ outcome: 'KILLED', path: 'KERNEL' });

  it('release_agent: the shell is killed at its first control-file open; the agent never runs on the host', async () => {
    // The hierarchy as the container sees it: unmounted from the host, read through its root.
    const cg = `/proc/${esc.initPid}/root/k/cg`;
    const agent = join(dir, 'agent.sh');
    const marker = join(dir, 'agent-ran');
    writeFileSync(agent, `#!/bin/sh\necho ran > ${marker}\n`);
    chmodSync(agent, 0o755);
    {
      const r = await lab.exec(esc, [
        '/bin/sh',
        '-c',
        `echo 1 > /k/cg/x/notify_on_release; echo ${agent} > /k/cg/release_agent; sh -c 'echo $$ > /k/cg/x/cgroup.procs'; echo survived`,
      ]);
      const d = await cw.detection('escape.kernel-control-write', (x) => about(esc)(x) && x.attributes.kind === 'notify_on_release');
      stoppedInKernel(cw, 'lsm/file_open', r, d);
      // The effect: nothing written, nothing run.
      expect(readFileSync(join(cg, 'x', 'notify_on_release'), 'utf8').trim()).toBe('0');
      expect(readFileSync(join(cg, 'release_agent'), 'utf8').trim()).toBe('');
      await new Promise((res) => setTimeout(res, 1500));
      expect(existsSync(marker)).toBe(false);
      expect(cw.events.some((e) => e.detection?.ruleId === 'escape.usermode-helper' && e.detection.attributes.program === agent)).toBe(
        false,
      );
    }
  });

  it('core_pattern: the writer is killed at open; core_pattern keeps its value', async () => {
    const r = await lab.exec(esc, ['/bin/sh', '-c', `echo '|/k/pwn %p' > ${CORE_PATTERN}; echo survived`]);
    stoppedInKernel(
      cw,
      'lsm/file_open',
      r,
      await cw.detection('escape.kernel-control-write', (x) => about(esc)(x) && x.attributes.kind === 'core_pattern'),
    );
    expect(readFileSync(CORE_PATTERN, 'utf8')).toBe(corePattern);
  });

  it('nsenter into the host: killed in the first host namespace it joins; the command never runs', async () => {
    const marker = join(dir, 'nsenter-ran');
    const r = await lab.exec(esc, [
      '/bin/nsenter',
      '-t',
      String(process.pid),
      '-m',
      '-u',
      '-i',
      '-n',
      '/bin/sh',
      '-c',
      `echo ran > ${marker}`,
    ]);
    expect(r.code).toBe(SIGKILLED);
    killedInKernel(await cw.detection('escape.setns-host', about(esc)));
    await new Promise((res) => setTimeout(res, 500));
    expect(existsSync(marker)).toBe(false);
  });

  it("the host's disk: the mount is killed, then whatever opens a file on the mount it left; nothing is read", async () => {
    if (!disk) throw new Error(`no host disk to mount: ${diskError?.message}`);
    const d = disk;
    // mount and cat are children of the shell: each is killed, the shell goes on and says how they ended.
    const r = await lab.exec(esc, [
      '/bin/sh',
      '-c',
      `/bin/busybox mknod /tmp/hd b 7 ${d.minor} && mkdir -p /tmp/m; mount -t ext4 /tmp/hd /tmp/m; echo "mount $?"; cat /tmp/m/secret; echo "cat $?"; /tmp/m/busybox echo ran; echo "exec $?"`,
    ]);
    expect(r.stdout, r.stderr).toContain(`mount ${SIGKILLED}`);
    expect(r.stdout).toContain(`cat ${SIGKILLED}`);
    expect(r.stdout).toContain(`exec ${SIGKILLED}`);
    expect(r.stdout).not.toMatch(/^ran$/m);
    expect(r.stdout).not.toContain(d.secret);
    const mount = await cw.detection('escape.mount-device', (x) => about(esc)(x) && !x.attributes.use);
    expect(mount.attributes.hostDevice).toBe('true');
    killedInKernel(mount);
    const use = await cw.detection('escape.mount-device', (x) => about(esc)(x) && x.attributes.use === 'open');
    expect(use.attributes.file).toBe('/secret');
    killedInKernel(use);
    const ran = await cw.detection('escape.mount-device', (x) => about(esc)(x) && x.attributes.use === 'exec');
    expect(ran.attributes.file).toBe('/busybox');
    killedInKernel(ran);
  });

  it("chroot to the host's /: killed before the shell it meant to run there", async () => {
    const r = await lab.exec(esc, ['/bin/chroot', '/host', '/bin/sh', '-c', 'echo escaped']);
    expect(r.code).toBe(SIGKILLED);
    expect(r.stdout).not.toContain('escaped');
    killedInKernel(await cw.detection('escape.chroot-host', about(esc)));
  });

  it('ptrace of a host process: the tracer is killed on attach; the host process lives on, untraced', async () => {
    const victim = spawn('/bin/sleep', ['60'], { stdio: 'ignore' });
    try {
      const r = await lab.exec(esc, ['/k/ptrace-attach', String(victim.pid)]);
      expect(r.code).toBe(SIGKILLED);
      killedInKernel(await cw.detection('escape.ptrace-host', about(esc)));
      const status = readFileSync(`/proc/${victim.pid}/status`, 'utf8');
      expect(/^TracerPid:\s+0$/m.test(status)).toBe(true);
      expect(victim.exitCode).toBe(null);
    } finally {
      victim.kill();
    }
  });

  it('/proc/<pid>/mem of a host process opened for writing: killed at the open, nothing written', async () => {
    const victim = spawn('/bin/sleep', ['60'], { stdio: 'ignore' });
    try {
      const r = await lab.exec(esc, ['/bin/sh', '-c', `echo x > /proc/${victim.pid}/mem; echo survived`]);
      const d = await cw.detection('escape.process-memory-write', about(esc));
      expect(d.attributes.target).toBe(String(victim.pid));
      stoppedInKernel(cw, 'lsm/file_open', r, d);
      expect(victim.exitCode).toBe(null);
    } finally {
      victim.kill();
    }
  });

  it('a cgroup hierarchy mounted in the container: the mount is killed, and so is a listing of what it left', async () => {
    // cgroup2, the host's one superblock (on v2 and hybrid nodes alike): no new hierarchy is made on the host.
    const r = await lab.exec(esc, [
      '/bin/sh',
      '-c',
      'mkdir -p /tmp/cg; mount -t cgroup2 none /tmp/cg; echo "mount $?"; ls /tmp/cg; echo "ls $?"',
    ]);
    expect(r.stdout, r.stderr).toContain(`mount ${SIGKILLED}`);
    expect(r.stdout).toContain(`ls ${SIGKILLED}`);
    expect(r.stdout).not.toContain('cgroup.procs');
    killedInKernel(await cw.detection('escape.mount-cgroupfs', (x) => about(esc)(x) && !x.attributes.use));
    killedInKernel(await cw.detection('escape.mount-cgroupfs', (x) => about(esc)(x) && x.attributes.use === 'open'));
  });

  it('bpf() from a container: killed at its first call, before it can use the answer', async () => {
    const r = await lab.exec(esc, ['/k/guard-actions', 'bpf']);
    expect(r.stdout).not.toContain('MAP_GET_FD_BY_ID');
    stoppedInKernel(cw, 'lsm/bpf', r, await cw.detection('escape.bpf-from-container', about(esc)));
  });

  it('a signal to the sensor from a container: the sender dies, the sensor lives on', async () => {
    const r = await lab.exec(esc, ['/k/guard-actions', 'signal', String(cw.pid), String(SIGWINCH), String(SIGWINCH)]);
    stoppedInKernel(cw, 'lsm/task_kill', r, await cw.detection('sensor.signal', about(esc)));
    expect(cw.events.filter((e) => e.detection?.ruleId === 'sensor.signal' && e.detection.container?.id === esc.id)).toHaveLength(1);
    expect(cw.alive).toBe(true);
  });

  it('only the actor dies: the escaping container and an ordinary one keep running; counters say what the kernel did', async () => {
    expect(isAlive(processRef(esc.initPid!)!)).toBe(true);
    expect((await lab.exec(esc, ['/bin/true'])).code).toBe(0);
    expect((await lab.exec(plain, ['/bin/sh', '-c', 'sleep 1; echo ok'])).stdout.trim()).toBe('ok');
    expect(isAlive(processRef(plain.initPid!)!)).toBe(true);
    // A write-open of an ordinary file is no control file: not killed.
    expect((await lab.exec(plain, ['/bin/sh', '-c', 'echo x > /tmp/f && cat /tmp/f'])).stdout.trim()).toBe('x');
    const s = await cw.waitFor((e) => Number(e.sensorStats?.counters?.['kernel.kill_mount_device_killed'] ?? 0) >= 1, 5000);
    const k = s.sensorStats.counters;
    const controlWrite = lsmDenies(cw, 'lsm/file_open') ? 'denied' : 'killed';
    expect(Number(k[`kernel.kill_control_write_${controlWrite}`])).toBeGreaterThanOrEqual(2);
    expect(Number(k['kernel.kill_setns_host_killed'])).toBeGreaterThanOrEqual(1);
    expect(Number(k['containment.escape.setns-host.killed.kernel'])).toBeGreaterThanOrEqual(1);
  });
});

describe.runIf(canRunKernelTests)('containment in the kernel: dry-run kills nothing', () => {
  let lab: RuntimeLab;
  let dir: string;
  let cw: CtrwatchProcess;
  let starting: Promise<CtrwatchProcess> | undefined;
  const corePattern = readFileSync(CORE_PATTERN, 'utf8');

  beforeAll(async () => {
    lab = await RuntimeLab.open();
    dir = mkdtempSync(join(tmpdir(), 'cw-killk-dry-'));
    chmodSync(dir, 0o755);
    cw = await (starting = sensorWith(dir, 'dry', 'dry-run'));
  }, scaled(180_000));
  afterAll(() => tearDown(cw, starting, lab, dir, corePattern));

  it('WOULD_KILL in the kernel, and the escapes run to their end', async () => {
    const c = await lab.start('runc', { args: ['/bin/sleep', '600'], privileged: true, hostPid: true });
    try {
      const marker = join(dir, 'nsenter-ran');
      // core_pattern rewritten with its own value: the open is the escape, the host keeps its setting.
      const w = await lab.exec(c, ['/bin/sh', '-c', `v=$(cat ${CORE_PATTERN}); echo "$v" > ${CORE_PATTERN}; echo survived`]);
      expect(w).toMatchObject({ code: 0 });
      expect(w.stdout).toContain('survived');
      const d = await cw.detection('escape.kernel-control-write', (x) => x.container?.id === c.id && x.attributes.kind === 'core_pattern');
      expect(d.containment).toEqual({ outcome: 'WOULD_KILL', path: 'KERNEL', reason: 'dry-run' });

      const n = await lab.exec(c, ['/bin/nsenter', '-t', String(process.pid), '-m', '/bin/sh', '-c', `echo ran > ${marker}`]);
      expect(n.code).toBe(0);
      expect(readFileSync(marker, 'utf8').trim()).toBe('ran');
      const s = await cw.detection('escape.setns-host', (x) => x.container?.id === c.id);
      expect(s.containment).toEqual({ outcome: 'WOULD_KILL', path: 'KERNEL', reason: 'dry-run' });
      expect(isAlive(processRef(c.initPid!)!)).toBe(true);
      const st = await cw.waitFor((e) => Number(e.sensorStats?.counters?.['kernel.kill_setns_host_would_kill'] ?? 0) >= 1, 5000);
      expect(Number(st.sensorStats.counters['kernel.kill_setns_host_killed'] ?? 0)).toBe(0);
    } finally {
      await lab.stop(c);
    }
  });
});

describe.runIf(canRunKernelTests)('containment in the kernel: the never-list', () => {
  let lab: RuntimeLab;
  let dir: string;
  let cw: CtrwatchProcess;
  let starting: Promise<CtrwatchProcess> | undefined;
  const corePattern = readFileSync(CORE_PATTERN, 'utf8');
  // core_pattern rewritten with its own value: the open is what is judged, the host keeps its setting.
  const REWRITE = ['/bin/sh', '-c', `v=$(cat ${CORE_PATTERN}); echo "$v" > ${CORE_PATTERN}; echo survived`];

  beforeAll(async () => {
    lab = await RuntimeLab.open();
    dir = mkdtempSync(join(tmpdir(), 'cw-killk-never-'));
    const file = join(dir, 'allow.yaml');
    writeFileSync(
      file,
      ['rules:', '  escape.kernel-control-write: { action: kill }', 'images:', '  allow: ["localhost/busybox*"]', `stateDir: ${dir}`].join(
        '\n',
      ),
    );
    cw = await (starting = CtrwatchProcess.start(['--policy', file]));
  }, scaled(180_000));
  afterAll(() => tearDown(cw, starting, lab, dir, corePattern));

  it('an allowlisted image is spared in the kernel and says why; a container without that image is killed under the same policy', async () => {
    const allowed = await lab.start('docker', { args: ['/bin/sleep', '300'], privileged: true });
    const other = await lab.start('runc', { args: ['/bin/sleep', '300'], privileged: true });
    try {
      const a = await lab.exec(allowed, REWRITE);
      expect(a.stdout, `status ${a.code}: ${a.stderr}`).toContain('survived');
      const d = await cw.detection('escape.kernel-control-write', (x) => x.container?.id === allowed.id);
      expect(d.containment).toEqual({ outcome: 'SPARED', path: 'KERNEL', reason: "the container's image or creator is allowlisted" });

      const o = await lab.exec(other, REWRITE);
      stoppedInKernel(cw, 'lsm/file_open', o, await cw.detection('escape.kernel-control-write', (x) => x.container?.id === other.id));
    } finally {
      await lab.stop(allowed);
      await lab.stop(other);
    }
  });

  it('a sandbox with no cgroup of its own is unknown to the kernel: user space kills it through the pidfd and says why', async () => {
    const root = await buildImage(join(dir, 'sandbox'));
    const script = `v=$(cat ${CORE_PATTERN}); echo "$v" > ${CORE_PATTERN}; sleep 5; echo survived`;
    const r = spawnSync(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount -t proc proc ${root.rootfs}/proc && exec chroot ${root.rootfs} /bin/sh -c '${script}'`,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.stdout).not.toContain('survived');
    expect(r.signal ?? r.status).toBe(r.signal ? 'SIGKILL' : SIGKILLED);
    const d = await cw.detection(
      'escape.kernel-control-write',
      (x) => x.attributes.kind === 'core_pattern' && x.container?.runtime === 'UNKNOWN',
    );
    expect(d.containment).toEqual({
      outcome: 'KILLED',
      path: 'USER_SPACE',
      reason: 'the kernel did not know it as a container (not named yet, or no cgroup of its own): killed from user space',
    });
    expect(readFileSync(CORE_PATTERN, 'utf8')).toBe(corePattern);
  });

  it('a host process doing the same is never killed', () => {
    expect(execFileSync(REWRITE[0], REWRITE.slice(1)).toString()).toContain('survived');
    expect(readFileSync(CORE_PATTERN, 'utf8')).toBe(corePattern);
  });
});
