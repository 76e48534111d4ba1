import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readHostFacts } from '../../src/host';
import { canRunKernelTests, scaled } from '../support/env';
import { CtrwatchProcess, type Ev } from '../support/ctrwatch';
import { RuntimeLab, type Started } from '../support/runtimes';
import { waitFor } from '../support/runtime-exec';
import { dropNamedHierarchy } from '../support/cgroup-v1';
import { ctrwatch, runAny } from '../support/run-cli';

const ESCAPE_RANKS = ['MEDIUM', 'HIGH', 'CRITICAL'];

describe.runIf(canRunKernelTests)('detections from real containers (ctrwatch run)', () => {
  let lab: RuntimeLab;
  let cw: CtrwatchProcess;
  let state: string;
  let cg: { mount?: string };
  beforeAll(async () => {
    lab = await RuntimeLab.open();
    state = mkdtempSync(join(tmpdir(), 'cw-state-'));
    cg = readHostFacts().cgroup;
    cw = await CtrwatchProcess.start(['--state-dir', state]);
  });
  afterAll(async () => {
    await cw?.stop();
    await lab?.close();
    rmSync(state, { recursive: true, force: true });
  });

  const dets = (rule: string, pred: (d: Ev) => boolean = () => true) =>
    cw.events.filter((e) => e.detection?.ruleId === rule && pred(e.detection)).map((e) => e.detection);
  const waitDet = (rule: string, pred: (d: Ev) => boolean = () => true, ms = 10_000) => cw.detection(rule, pred, ms);
  const about = (c: Started) => (d: Ev) => d.container?.id === c.id;
  const settle = () => new Promise((r) => setTimeout(r, 500));
  /** Imports an image of its own content with podman (an identical tar would be the same image, not a new one). */
  const importUnique = async (cli: string[], tag: string) => {
    const img = mkdtempSync(join(lab.dir, 'img-'));
    copyFileSync(join(lab.dir, 'image', 'rootfs.tar'), join(img, 'rootfs.tar'));
    writeFileSync(join(img, 'unique'), `${tag}-${process.pid}-${Date.now()}\n`);
    execFileSync('tar', ['-rf', join(img, 'rootfs.tar'), '-C', img, 'unique']);
    const r = await runAny([...cli, 'import', join(img, 'rootfs.tar'), tag]);
    expect(r.code, r.stderr).toBe(0);
  };
  /** `podman run --rm` of an image, with the limits this machine's runc accepts. */
  const podmanRun = async (cli: string[], tag: string) => {
    const r = await runAny([
      ...cli,
      'run',
      '--rm',
      '--network',
      'none',
      '--ulimit',
      'nofile=1024:1024',
      '--ulimit',
      'nproc=4096:4096',
      tag,
      '/bin/true',
    ]);
    expect(r.code, r.stderr).toBe(0);
  };

  it('T1611 at start: privileged, host namespaces, host / and a runtime socket mounted', async () => {
    const sock = (await lab.cli('docker'))[2].replace('unix://', '');
    const c = await lab.start('docker', {
      args: ['/bin/sleep', '300'],
      privileged: true,
      hostPid: true,
      hostNet: true,
      mounts: [
        { source: '/', destination: '/host' },
        { source: sock, destination: '/var/run/docker.sock' },
      ],
    });
    const priv = await waitDet('escape.privileged-container', about(c));
    expect(priv).toMatchObject({ severity: 'HIGH', techniques: ['T1611'] });
    expect(priv.container).toMatchObject({ runtime: 'DOCKER', image: 'localhost/busybox:latest' });
    expect(priv.chain[0].pid).toBe(c.initPid);
    expect((await waitDet('escape.host-namespaces', about(c))).severity).toBe('HIGH');
    expect((await waitDet('escape.sensitive-mount', (d) => about(c)(d) && d.attributes.source === '/')).severity).toBe('CRITICAL');
    expect(
      (await waitDet('escape.sensitive-mount', (d) => about(c)(d) && d.attributes.destination === '/var/run/docker.sock')).severity,
    ).toBe('CRITICAL');
    // The start's findings share one walk of the init's ancestors: each carries the whole chain,
    // the init, then its parent (the shim: runc clones the init as its own parent's child), and
    // on up.
    const pids = (d: Ev) => (d.chain as { pid: number }[]).map((p) => p.pid);
    const ppid = Number(/^PPid:\s*(\d+)$/m.exec(readFileSync(`/proc/${c.initPid}/status`, 'utf8'))?.[1]);
    expect(pids(priv).slice(0, 2)).toEqual([c.initPid, ppid]);
    expect((priv.chain as { exe: string }[])[1].exe).toMatch(/containerd-shim/);
    expect(pids(priv).length).toBeGreaterThan(2);
    for (const rule of ['escape.host-namespaces', 'escape.sensitive-mount'])
      for (const d of dets(rule, about(c))) expect(pids(d), rule).toEqual(pids(priv));
    await lab.stop(c);
  });

  it('stays quiet at MEDIUM and above for an ordinary container, exec into it, and a host unshare -m', async () => {
    const d = await lab.start('docker', { args: ['/bin/sleep', '300'] });
    const r = await lab.start('runc', { args: ['/bin/sleep', '300'] });
    await lab.exec(d, ['/bin/sh', '-c', 'id; ls /']);
    await lab.exec(r, ['/bin/sh', '-c', 'id; ls /']);
    const tag = `quiet-${process.pid}`;
    execFileSync('unshare', ['-m', '/bin/sh', '-c', 'mount -t tmpfs none /mnt; true', tag]);
    await cw.waitFor((e) => e.containerExec?.container?.id === r.id);
    await settle();
    for (const c of [d, r]) {
      const loud = cw.events.filter(
        (e) =>
          e.detection?.container?.id === c.id && e.detection.techniques.includes('T1611') && ESCAPE_RANKS.includes(e.detection.severity),
      );
      expect(loud, `${c.runtime}: ${JSON.stringify(loud.map((e) => e.detection.ruleId))}`).toEqual([]);
    }
    expect((await waitDet('escape.root-container', about(r))).severity).toBe('LOW');
    expect(cw.events.filter((e) => e.detection && JSON.stringify(e.detection.chain ?? []).includes(tag))).toEqual([]);
    await lab.stop(d);
    await lab.stop(r);
  });

  it('T1611 actions: setns into the host, a cgroupfs mount, release_agent, the kernel running it, chroot into host /', async () => {
    const hostDir = mkdtempSync(join(lab.dir, 'escape-'));
    const agent = join(hostDir, 'agent.sh');
    const marker = join(hostDir, 'marker');
    writeFileSync(agent, `#!/bin/sh\necho ran > ${marker}\n`);
    chmodSync(agent, 0o755);
    // In the host's cgroup namespace: the kernel creates a cgroup v1 hierarchy only from there, and
    // on cgroup v2 nodes runtimes give each container a cgroup namespace of its own.
    const c = await lab.start('runc', {
      args: ['/bin/sleep', '300'],
      privileged: true,
      hostPid: true,
      hostCgroupns: true,
      mounts: [{ source: '/', destination: '/host' }],
    });
    // A named v1 hierarchy of our own: it can be mounted from a container on cgroup v2 nodes
    // (where every controller sits on cgroup2) as on v1/hybrid ones, and the host's real
    // hierarchies and their release_agent are never touched.
    const hierarchy = `cwx-${process.pid}`;
    try {
      // nsenter into the test process's (the host's) mount and net namespaces.
      await lab.exec(c, ['/bin/nsenter', '-t', String(process.pid), '-m', '-n', '/bin/true']);
      const setns = await waitDet('escape.setns-host', (d) => about(c)(d) && d.attributes.namespaces.includes('mnt'));
      expect(setns.severity).toBe('CRITICAL');
      expect(setns.attributes.namespaces).toContain('mnt');

      // The classic cgroup v1 release_agent escape, for real, with a harmless agent.
      await lab.exec(c, [
        '/bin/sh',
        '-c',
        [
          `mkdir -p /tmp/cg && mount -t cgroup -o none,name=${hierarchy} cgroup /tmp/cg`,
          `mkdir -p /tmp/cg/cwx-${process.pid} && echo 1 > /tmp/cg/cwx-${process.pid}/notify_on_release`,
          `echo ${agent} > /tmp/cg/release_agent`,
          `sh -c 'echo $$ > /tmp/cg/cwx-${process.pid}/cgroup.procs'`,
        ].join(' && '),
      ]);
      // this mount, not the runtime's: on cgroup v2 runc's init mounts cgroup2 for the container
      expect((await waitDet('escape.mount-cgroupfs', (d) => about(c)(d) && d.attributes.target === '/tmp/cg')).severity).toBe('HIGH');
      expect(
        (await waitDet('escape.kernel-control-write', (d) => about(c)(d) && d.attributes.file.endsWith('notify_on_release'))).severity,
      ).toBe('HIGH');
      expect(
        (await waitDet('escape.kernel-control-write', (d) => about(c)(d) && d.attributes.file.endsWith('release_agent'))).severity,
      ).toBe('CRITICAL');
      const helper = await waitDet('escape.usermode-helper', (d) => d.attributes.program === agent);
      expect(helper.severity).toBe('CRITICAL');
      expect(helper.container.id).toBe(c.id);
      // the detection comes from the agent's exec; its write lands a moment later
      expect(await waitFor(() => existsSync(marker), scaled(5000))).toBe(true);

      await lab.exec(c, ['/bin/chroot', '/host', '/bin/true']);
      expect((await waitDet('escape.chroot-host', about(c))).attributes.path).toBe('/host');
    } finally {
      await lab.stop(c);
      dropNamedHierarchy(hierarchy);
    }
  });

  it('T1611: ptrace of a host process from a container sharing the host pid namespace', async () => {
    const dir = mkdtempSync(join(lab.dir, 'ptrace-'));
    execFileSync('gcc', ['-static', '-O2', '-o', join(dir, 'ptrace-attach'), join(__dirname, '../fixtures/bin/ptrace-attach.c')]);
    const victim = spawn('/bin/sleep', ['60'], { stdio: 'ignore' });
    const c = await lab.start('runc', {
      args: ['/bin/sleep', '300'],
      privileged: true,
      hostPid: true,
      mounts: [{ source: dir, destination: '/t' }],
    });
    try {
      await lab.exec(c, ['/t/ptrace-attach', String(victim.pid)]);
      const d = await waitDet('escape.ptrace-host', about(c));
      expect(d.severity).toBe('HIGH');
      expect(d.attributes.target).toBe(String(victim.pid));
    } finally {
      victim.kill();
      await lab.stop(c);
    }
  });

  it('T1610 and T1613: a container with host / deploys a container and enumerates through the runtime socket', async () => {
    const cli = await lab.cli('docker');
    const c = await lab.start('docker', { args: ['/bin/sleep', '300'], privileged: true, mounts: [{ source: '/', destination: '/host' }] });
    try {
      const r1 = await lab.exec(c, ['/bin/chroot', '/host', ...cli, 'ps', '-q']);
      expect(r1.code).toBe(0);
      const r2 = await lab.exec(c, [
        '/bin/chroot',
        '/host',
        ...cli,
        'run',
        '--rm',
        '--network',
        'none',
        'localhost/busybox:latest',
        '/bin/true',
      ]);
      expect(r2.code).toBe(0);
      expect((await waitDet('discovery.runtime-cli', (d) => about(c)(d) && d.attributes.command === 'docker ps')).severity).toBe('HIGH');
      expect((await waitDet('discovery.runtime-socket', about(c))).attributes.socket).toBe(cli[2].replace('unix://', ''));
      expect((await waitDet('deploy.from-container', (d) => about(c)(d) && d.attributes.command === 'docker run')).severity).toBe('HIGH');
      const deployed = await waitDet('deploy.from-container', (d) => d.container?.id !== c.id && d.attributes.socket !== undefined);
      expect(deployed.container.runtime).toBe('DOCKER');
      expect(deployed.attributes.from).toBe(c.name);
    } finally {
      await lab.stop(c);
    }
  });

  it('T1613 on the host: LOW for root, MEDIUM for an unexpected user', async () => {
    const cli = await lab.cli('docker');
    expect((await runAny([...cli, 'ps'])).code).toBe(0);
    const root = await waitDet(
      'discovery.runtime-cli',
      (d) => d.attributes.command === 'docker ps' && !d.container && (d.chain[0].uid ?? 0) === 0,
    );
    expect(root.severity).toBe('LOW');
    await runAny([...cli, 'ps'], { uid: 65534, gid: 65534 }); // refused: the socket is root's
    const other = await waitDet('discovery.runtime-cli', (d) => d.chain[0].uid === 65534);
    expect(other.severity).toBe('MEDIUM');
    const ctr = await lab.cli('containerd');
    expect((await runAny([...ctr, 'c', 'ls'])).code).toBe(0);
    expect((await waitDet('discovery.runtime-cli', (d) => d.attributes.command === 'ctr c ls')).techniques).toEqual(['T1613']);
  });

  it('T1610: a container made by no known runtime', async () => {
    const rootfs = join(lab.dir, 'bare-det');
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
    const tag = `bare-det-${process.pid}`;
    // the creator is the program as exec'd: resolve it from PATH as the shell would (/bin or /usr/bin)
    const unshare = execFileSync('/bin/sh', ['-c', 'command -v unshare'], { encoding: 'utf8' }).trim();
    spawnSync(unshare, ['--fork', '--pid', '--mount', 'chroot', rootfs, '/bin/busybox', 'true', tag]);
    const d = await waitDet('deploy.unknown-runtime', (x) => x.container?.runtime === 'UNKNOWN' && JSON.stringify(x.chain).includes(tag));
    expect(d.severity).toBe('MEDIUM');
    expect(d.attributes.creator).toBe(unshare);
  });

  it('T1053.007: a CronJob container, and an image started on a schedule', async () => {
    const c = await lab.start('runc', {
      args: ['/bin/sleep', '300'],
      annotations: { 'io.kubernetes.pod.name': 'backup-29392020-x7k2p', 'io.kubernetes.pod.namespace': 'ops' },
    });
    const job = await waitDet('orchestration.k8s-job', about(c));
    expect(job).toMatchObject({ severity: 'LOW', techniques: ['T1053.007'] });
    expect(job.attributes.cronJob).toBe('backup');
    await lab.stop(c);
    // Four runs on a fixed schedule: at least 1.5 s (times CTRWATCH_TEST_TIME_SCALE), and
    // four times what one run took here, so that start jitter under load (a VM under emulation
    // beside other work) stays within the rule's 25%.
    const tag = `sched-${process.pid}`;
    const w0 = Date.now();
    await lab.start('runc', { args: ['/bin/true'], detach: false });
    const period = Math.max(scaled(1500), 4 * (Date.now() - w0));
    const t0 = Date.now();
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + i * period - Date.now())));
      await lab.start('runc', { args: ['/bin/echo', tag], detach: false });
    }
    const s = await waitDet('orchestration.scheduled-image', (d) => d.attributes.key.includes(tag));
    expect(Number(s.attributes.periodSeconds)).toBeGreaterThan(0.7);
  });

  it('T1543.005: restart policy, OCI hooks, a container started by a service unit', async () => {
    const d = await lab.start('docker', { args: ['/bin/sleep', '300'], restart: 'always' });
    expect((await waitDet('persistence.restart-policy', about(d))).attributes.restartPolicy).toBe('always');
    await lab.stop(d);

    const dir = mkdtempSync(join(lab.dir, 'hook-'));
    const bundle = join(dir, 'bundle');
    mkdirSync(join(bundle, 'rootfs/bin'), { recursive: true });
    copyFileSync('/bin/busybox', join(bundle, 'rootfs/bin/busybox'));
    execFileSync('runc', ['spec'], { cwd: bundle });
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    spec.process.terminal = false;
    spec.process.args = ['/bin/busybox', 'true'];
    spec.hooks = { prestart: [{ path: '/bin/true', args: ['true', 'hook'] }] };
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
    const id = `cwt-hook-${process.pid}`;
    try {
      execFileSync('runc', ['run', '--bundle', bundle, id], { stdio: 'ignore', timeout: 30_000 });
      const h = await waitDet('persistence.oci-hook', (x) => x.container?.id === id);
      expect(h).toMatchObject({ severity: 'MEDIUM', techniques: ['T1543.005'] });
      expect(h.attributes).toMatchObject({ stage: 'prestart', path: '/bin/true' });
    } finally {
      spawnSync('runc', ['delete', '-f', id]);
    }

    // A "service": a process in a cgroup named like a systemd unit runs `docker run`.
    const slice = join(cg.mount!, 'system.slice');
    const sliceWasThere = existsSync(slice);
    const unit = join(slice, `cwtest-${process.pid}.service`);
    mkdirSync(unit, { recursive: true });
    const cli = await lab.cli('docker');
    try {
      const r = spawnSync('/bin/sh', [
        '-c',
        `echo $$ > ${unit}/cgroup.procs && exec "$@"`,
        'sh',
        ...cli,
        'run',
        '--rm',
        '--network',
        'none',
        'localhost/busybox:latest',
        '/bin/true',
      ]);
      expect(r.status).toBe(0);
      const s = await waitDet('persistence.service-unit', (x) => x.attributes.unit.endsWith(`cwtest-${process.pid}.service`));
      expect(s.severity).toBe('LOW');
    } finally {
      rmdirSync(unit);
      if (!sliceWasThere) {
        try {
          rmdirSync(slice);
        } catch {
          /* in use by someone else */
        }
      }
    }
  });

  it('T1204.003: an image imported here and new to the node, and drift', async () => {
    const cli = await lab.cli('podman');
    const tag = `localhost/cwtest-${process.pid}:1`;
    await importUnique(cli, tag);
    expect((await waitDet('image.local-import', (d) => d.attributes.command === 'podman import')).severity).toBe('LOW');
    await podmanRun(cli, tag);
    const first = await waitDet('image.first-seen', (d) => d.attributes.image === tag);
    expect(first.techniques).toEqual(['T1204.003']);
    expect((await waitDet('image.local-import', (d) => d.attributes.image === tag)).severity).toBe('MEDIUM');

    const c = await lab.start('runc', { args: ['/bin/sleep', '300'] });
    try {
      await lab.exec(c, ['/bin/sleep', '0']);
      await lab.exec(c, ['/bin/sh', '-c', 'cp /bin/busybox /tmp/dropped && /tmp/dropped true']);
      const drift = await waitDet('drift.exec-new-file', about(c));
      expect(drift).toMatchObject({ severity: 'HIGH', techniques: ['T1204.003'] });
      expect(drift.attributes.file).toBe('/tmp/dropped');
      expect(dets('drift.exec-new-file', (d) => about(c)(d) && d.attributes.file === '/bin/sleep')).toEqual([]);
    } finally {
      await lab.stop(c);
    }
  });

  it('T1204.003 across a restart: the images seen are written by the upkeep and at the stop, and are not news again', async () => {
    const cli = await lab.cli('podman');
    const [unique, run] = [(tag: string) => importUnique(cli, tag), (tag: string) => podmanRun(cli, tag)];
    const firstSeen = (s: CtrwatchProcess, tag: string) =>
      s.events.filter((e) => e.detection?.ruleId === 'image.first-seen' && e.detection.attributes.image === tag);
    const stateDir = mkdtempSync(join(tmpdir(), 'cw-images-'));
    const file = join(stateDir, 'images-seen.json');
    const kept = () => (existsSync(file) ? Object.keys(JSON.parse(readFileSync(file, 'utf8')) as object) : []);
    const [x, y] = [`localhost/cwkeep-${process.pid}:x`, `localhost/cwkeep-${process.pid}:y`];
    let a: CtrwatchProcess | undefined;
    let b: CtrwatchProcess | undefined;
    try {
      await unique(x);
      await unique(y);
      a = await CtrwatchProcess.start(['--state-dir', stateDir]);
      await run(x);
      const dx = await a.detection('image.first-seen', (d) => d.attributes.image === x);
      const keyOf = (d: Ev) => (d.attributes.digest as string) || (d.attributes.image as string);
      // Written by the 5-second upkeep while the sensor runs.
      expect(await waitFor(() => kept().includes(keyOf(dx)), 15_000, 200), 'the upkeep wrote the store').toBe(true);
      await run(y);
      const dy = await a.detection('image.first-seen', (d) => d.attributes.image === y);
      await a.stop();
      a = undefined;
      expect(kept()).toContain(keyOf(dy));

      b = await CtrwatchProcess.start(['--state-dir', stateDir]);
      await run(x);
      await run(y);
      const started = (tag: string) => b!.waitFor((e) => e.containerStarted?.container?.image === tag);
      await started(x);
      await started(y);
      await settle();
      expect(firstSeen(b, x)).toEqual([]);
      expect(firstSeen(b, y)).toEqual([]);
    } finally {
      await a?.stop();
      await b?.stop();
      await runAny([...cli, 'rmi', x, y]);
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

describe.runIf(canRunKernelTests)('policy', () => {
  it('turns rules off, overrides severities, and enforces an image allowlist', async () => {
    const lab = await RuntimeLab.open();
    const dir = mkdtempSync(join(tmpdir(), 'cw-policy-'));
    const file = join(dir, 'policy.yaml');
    writeFileSync(
      file,
      [
        'rules:',
        '  escape.root-container: false',
        '  escape.privileged-container: { severity: CRITICAL }',
        'images:',
        '  allow: ["registry.example.com/*"]',
        `stateDir: ${dir}`,
      ].join('\n'),
    );
    const cw = await CtrwatchProcess.start(['--policy', file]);
    try {
      const c = await lab.start('docker', { args: ['/bin/sleep', '300'], privileged: true });
      const na = (await cw.waitFor((e) => e.detection?.ruleId === 'deploy.image-not-allowed' && e.detection.container?.id === c.id))
        .detection;
      expect(na).toMatchObject({ severity: 'MEDIUM', techniques: ['T1610'] });
      expect(na.attributes.image).toBe('localhost/busybox:latest');
      const pv = (await cw.waitFor((e) => e.detection?.ruleId === 'escape.privileged-container' && e.detection.container?.id === c.id))
        .detection;
      expect(pv.severity).toBe('CRITICAL');
      await new Promise((r) => setTimeout(r, 300));
      expect(cw.events.filter((e) => e.detection?.ruleId === 'escape.root-container')).toEqual([]);
      await lab.stop(c);
    } finally {
      await cw.stop();
      await lab.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad policy with the file, line and reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-policy-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'rules:\n  escape.privileged-container:\n    severity: SEVERE\n');
    const r = await ctrwatch(['run', '--policy', file]);
    rmSync(dir, { recursive: true, force: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `${file}:3:15: rule escape.privileged-container: severity must be one of INFO, LOW, MEDIUM, HIGH, CRITICAL, not 'SEVERE'`,
    );
    expect(r.stdout).toBe('');
  });
});
