import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRunKernelTests } from '../support/env';
import { CtrwatchProcess, type Ev } from '../support/ctrwatch';
import { ociConfig, specTemplate } from '../support/runtime-oci';
import { RuntimeLab, type Started } from '../support/runtimes';

/**
 * Whose a process is, against a process that tries to hide: each evasion done
 * for real in a real container, next to its plain form and the cases that must
 * stay quiet (below MEDIUM).
 */
const LOUD = ['MEDIUM', 'HIGH', 'CRITICAL'];
const PIDS_AGENT = '/sys/fs/cgroup/pids/release_agent';

describe.runIf(canRunKernelTests)('evasion: lineage decides whose a process is (ctrwatch run)', () => {
  let lab: RuntimeLab;
  let cw: CtrwatchProcess;
  let state: string;
  let fx: string; // bound in at /t: the helpers and a root for nested containers
  let rootfs: string; // the runc containers' shared rootfs, as the host sees it
  let old: Started; // started before the sensor
  let agentBefore: string;
  const tag = `lin${process.pid}`;

  beforeAll(async () => {
    agentBefore = readFileSync(PIDS_AGENT, 'utf8');
    lab = await RuntimeLab.open();
    state = mkdtempSync(join(tmpdir(), 'cw-state-'));
    rootfs = join(lab.dir, 'image', 'rootfs');
    fx = mkdtempSync(join(lab.dir, 'fx-'));
    for (const f of ['fake-runtime', 'no-exec-sandbox']) {
      execFileSync('gcc', ['-static', '-O2', '-o', join(fx, f === 'fake-runtime' ? 'runc' : f), join(__dirname, `../fixtures/bin/${f}.c`)]);
    }
    mkdirSync(join(fx, 'nestroot/bin'), { recursive: true });
    copyFileSync('/bin/busybox', join(fx, 'nestroot/bin/busybox'));
    symlinkSync('busybox', join(fx, 'nestroot/bin/sh'));
    // Container processes older than the sensor: a subshell, and a shell in a mount namespace
    // of its own, that wait, then mount the pids hierarchy and rewrite release_agent (its own
    // value) from the shell itself.
    const late = (cg: string) =>
      `while [ ! -e /tmp/go-old-${tag} ]; do sleep 0.1; done; mkdir -p ${cg} && mount -t cgroup -o pids cgroup ${cg} && v=$(cat ${cg}/release_agent) && echo "$v" > ${cg}/release_agent; sleep 300`;
    old = await lab.start('runc', {
      privileged: true,
      args: ['/bin/sh', '-c', `(${late(`/tmp/cgo-${tag}`)}) & unshare -m /bin/sh -c '${late(`/tmp/cgu-${tag}`)}' & sleep 300`],
    });
    cw = await CtrwatchProcess.start(['--state-dir', state]);
  });

  afterAll(async () => {
    try {
      await cw?.stop();
      await lab?.close();
    } finally {
      // The host's release_agent as it was, whatever happened above.
      if (agentBefore !== undefined && readFileSync(PIDS_AGENT, 'utf8') !== agentBefore)
        writeFileSync(PIDS_AGENT, agentBefore.trim() ? agentBefore : '\n');
      if (state) rmSync(state, { recursive: true, force: true });
    }
  });

  const dets = (pred: (d: Ev) => boolean) => cw.events.filter((e) => e.detection && pred(e.detection)).map((e) => e.detection);
  const waitDet = async (rule: string, pred: (d: Ev) => boolean = () => true, ms = 10_000) => {
    try {
      return (await cw.waitFor((e) => e.detection?.ruleId === rule && pred(e.detection), ms)).detection;
    } catch (err) {
      const seen = dets((d) => d.ruleId === rule).map((d) => JSON.stringify({ ...d, chain: d.chain?.map((p: Ev) => `${p.pid}:${p.exe}`) }));
      throw new Error(`${rule} not seen; seen of that rule:\n${seen.slice(-5).join('\n')}`, { cause: err });
    }
  };
  const about = (c: Started) => (d: Ev) => d.container?.id === c.id;
  const settle = () => new Promise((r) => setTimeout(r, 700));

  it('after unshare -m or -Urm in a container, a cgroupfs mount, release_agent and setns into the host still fire (and the plain form)', async () => {
    const c = await lab.start('runc', { args: ['/bin/sleep', '300'], privileged: true, hostPid: true });
    try {
      const escape = (dir: string) =>
        [
          `mkdir -p ${dir} && mount -t cgroup -o pids cgroup ${dir}`,
          `v=$(cat ${dir}/release_agent) && echo "$v" > ${dir}/release_agent`,
          `nsenter -t ${process.pid} -m -n /bin/true`,
        ].join(' && ');
      // Plain.
      expect((await lab.exec(c, ['/bin/sh', '-c', escape(`/tmp/cgp-${tag}`)])).code).toBe(0);
      expect((await waitDet('escape.mount-cgroupfs', (d) => about(c)(d) && d.attributes.target === `/tmp/cgp-${tag}`)).severity).toBe(
        'HIGH',
      );
      expect(
        (await waitDet('escape.kernel-control-write', (d) => about(c)(d) && d.attributes.path === `/tmp/cgp-${tag}/release_agent`))
          .severity,
      ).toBe('CRITICAL');
      await waitDet('escape.setns-host', about(c));
      const n0 = dets((d) => d.ruleId === 'escape.setns-host' && about(c)(d)).length;

      // In a private mount namespace of its own.
      const r = await lab.exec(c, ['/bin/unshare', '-m', '/bin/sh', '-c', escape(`/tmp/cgm-${tag}`)]);
      expect(r.code, r.stderr).toBe(0);
      const m = await waitDet('escape.mount-cgroupfs', (d) => d.attributes.target === `/tmp/cgm-${tag}`);
      expect(m.container.id).toBe(c.id);
      expect(m.severity).toBe('HIGH');
      const w = await waitDet('escape.kernel-control-write', (d) => d.attributes.path === `/tmp/cgm-${tag}/release_agent`);
      expect(w).toMatchObject({ severity: 'CRITICAL', container: { id: c.id } });
      await cw.waitFor(() => dets((d) => d.ruleId === 'escape.setns-host' && about(c)(d)).length > n0);

      // In a user namespace too: the mount is refused, the attempt is still the container's.
      await lab.exec(c, [
        '/bin/unshare',
        '-Urm',
        '/bin/sh',
        '-c',
        `mkdir -p /tmp/cgu-${tag}; mount -t cgroup -o pids cgroup /tmp/cgu-${tag}; true`,
      ]);
      const u = await waitDet('escape.mount-cgroupfs', (d) => d.attributes.target === `/tmp/cgu-${tag}`);
      expect(u.container.id).toBe(c.id);
      expect(LOUD).toContain(u.severity);
    } finally {
      await lab.stop(c);
    }
  });

  it('a container process that ran before the sensor is followed: its release_agent write fires', async () => {
    // The sensor found it at start, as existing.
    await cw.waitFor((e) => e.containerStarted?.container?.id === old.id && e.containerStarted.container.existing === true);
    writeFileSync(join(rootfs, 'tmp', `go-old-${tag}`), '');
    const w = await waitDet('escape.kernel-control-write', (d) => about(old)(d) && d.attributes.path === `/tmp/cgo-${tag}/release_agent`);
    expect(w.severity).toBe('CRITICAL');
    // The writer is the subshell that started before the sensor, not a new process.
    const writer = w.chain[0];
    expect(writer.ppid).toBe(old.initPid);
    expect((await waitDet('escape.mount-cgroupfs', about(old))).severity).toBe('HIGH');
    // The one that moved to a mount namespace of its own before the sensor started is the container's too,
    // not a container of its own.
    const moved = await waitDet('escape.kernel-control-write', (d) => d.attributes.path === `/tmp/cgu-${tag}/release_agent`);
    expect(moved.container.id).toBe(old.id);
    expect(cw.events.filter((e) => e.containerStarted?.container?.existing && e.containerStarted.process?.ppid === old.initPid)).toEqual(
      [],
    );
  });

  it("drift by PID 1: the container's init exec'ing a file written after the start fires; its entrypoint does not", async () => {
    const dir = `/tmp/d-${tag}`;
    const c = await lab.start('runc', { args: ['/bin/sh', '-c', `while [ ! -e ${dir}/go ]; do sleep 0.1; done; exec ${dir}/sleep 300`] });
    try {
      await settle();
      mkdirSync(join(rootfs, dir), { recursive: true });
      copyFileSync('/bin/busybox', join(rootfs, dir, 'sleep'));
      writeFileSync(join(rootfs, dir, 'go'), '');
      const d = await waitDet('drift.exec-new-file', about(c));
      expect(d).toMatchObject({ severity: 'HIGH', attributes: { file: `${dir}/sleep` } });
      expect(d.chain[0].pid).toBe(c.initPid);
      expect(dets((x) => x.ruleId === 'drift.exec-new-file' && about(c)(x) && x.attributes.file === '/bin/sh')).toEqual([]);
    } finally {
      await lab.stop(c);
      rmSync(join(rootfs, dir), { recursive: true, force: true });
    }
  });

  it('a nested "runtime" naming another container\'s bundle and id gets its own id, no host read of that bundle, and T1610', async () => {
    const victim = await lab.start('runc', {
      args: ['/bin/sleep', '300'],
      annotations: { 'io.kubernetes.cri.image-name': 'victim-image' },
    });
    const outer = await lab.start('runc', { args: ['/bin/sleep', '300'], privileged: true, mounts: [{ source: fx, destination: '/t' }] });
    try {
      await cw.waitFor((e) => e.containerStarted?.container?.id === victim.id && e.containerStarted.container.image === 'victim-image');
      const r = await lab.exec(outer, ['/t/runc', 'create', '--bundle', victim.bundle!, victim.id]);
      expect(r.code, r.stderr).toBe(0);
      const nestedId = `${outer.id}/${victim.id}`;
      const created = (await cw.waitFor((e) => e.containerCreated?.container?.id === nestedId)).containerCreated.container;
      expect(created.image).toBeUndefined();
      expect(created.labels?.['ctrwatch.io/made-in']).toBe(outer.id);
      const dep = await waitDet('deploy.from-container', (d) => d.container?.id === nestedId);
      expect(dep).toMatchObject({ severity: 'HIGH', techniques: ['T1610', 'T1611'], attributes: { from: outer.id } });
      expect(dep.container.privileged).toBe(true); // the kernel's facts: every capability in the host's user namespace
      // Nothing but the victim itself was reported under the victim's id.
      const asVictim = cw.events
        .flatMap((e) => Object.values(e))
        .filter((v: any) => v?.container?.id === victim.id && v.container.initPid !== victim.initPid);
      expect(asVictim).toEqual([]);
    } finally {
      await lab.stop(outer);
      await lab.stop(victim);
    }
  });

  it('no id is held by two live containers: the same runc id under two state roots', async () => {
    const tpl = await specTemplate(join(lab.dir, `tpl-${tag}`), 'runc');
    const id = `cwt-dup-${tag}`;
    const made: { root: string }[] = [];
    try {
      for (const n of ['a', 'b']) {
        const b = join(lab.dir, `dup-${n}`);
        const root = join(lab.dir, `dup-root-${n}`);
        mkdirSync(b, { recursive: true });
        const cfg = ociConfig(tpl, { args: ['/bin/sleep', '300'] }, id, rootfs) as ReturnType<typeof ociConfig> & {
          linux: { cgroupsPath?: string };
        };
        cfg.linux.cgroupsPath = `/cwt-dup-${n}-${tag}`;
        writeFileSync(join(b, 'config.json'), JSON.stringify(cfg));
        const log = openSync(join(b, 'log'), 'a');
        try {
          made.push({ root });
          execFileSync('runc', ['--root', root, 'create', '--bundle', b, id], { stdio: ['ignore', log, log], timeout: 30_000 });
        } finally {
          closeSync(log);
        }
        execFileSync('runc', ['--root', root, 'start', id], { timeout: 30_000 });
      }
      const first = (await cw.waitFor((e) => e.containerStarted?.container?.id === id)).containerStarted.container;
      const second = (await cw.waitFor((e) => e.containerStarted?.container?.labels?.['ctrwatch.io/duplicate-id'] === id)).containerStarted
        .container;
      expect(second.id).not.toBe(id);
      expect(second.id.startsWith(`${id}~`)).toBe(true);
      expect(second.initPid).not.toBe(first.initPid);
      // Stable: every later event of that container carries the same id.
      expect(
        cw.events.filter((e) => e.containerCreated?.container?.initPid === second.initPid).map((e) => e.containerCreated.container.id),
      ).toEqual([second.id]);
    } finally {
      for (const m of made) spawnSync('runc', ['--root', m.root, 'delete', '-f', id], { timeout: 30_000 });
      // runc delete removes their cgroups; if it could not, do it here (empty directories only).
      for (const ctrl of readdirSync('/sys/fs/cgroup')) {
        for (const n of ['a', 'b']) {
          const d = join('/sys/fs/cgroup', ctrl, `cwt-dup-${n}-${tag}`);
          if (existsSync(d)) spawnSync('rmdir', [d]);
        }
      }
    }
  });

  it('a root change that never execs is a container, in a container and on the host; image unpackers stay quiet', async () => {
    const outer = await lab.start('runc', { args: ['/bin/sleep', '300'], privileged: true, mounts: [{ source: fx, destination: '/t' }] });
    try {
      expect((await lab.exec(outer, ['/t/no-exec-sandbox', '/t/nestroot'])).code).toBe(0);
      const nested = await waitDet(
        'deploy.from-container',
        (d) => d.container?.labels?.['ctrwatch.io/made-in'] === outer.id && d.container.runtime === 'UNKNOWN',
      );
      expect(nested.severity).toBe('HIGH');
      expect(nested.container.id.startsWith(`${outer.id}/mntns-`)).toBe(true);

      // On the host: the same program is a container by no known runtime.
      const child = spawn(join(fx, 'no-exec-sandbox'), [join(fx, 'nestroot')], { stdio: 'ignore' });
      const pid = child.pid!;
      await new Promise((r) => child.once('exit', r));
      const host = (await cw.waitFor((e) => e.containerCreated?.container?.initPid === pid)).containerCreated.container;
      expect(host.runtime).toBe('UNKNOWN');
      const unk = await waitDet('deploy.unknown-runtime', (d) => d.container?.initPid === pid);
      expect(unk.severity).toBe('MEDIUM');

      // Docker unpacks the lab's image (docker-untar: chroot, no exec) on its first use.
      const d = await lab.start('docker', { args: ['/bin/sleep', '300'] });
      await lab.exec(d, ['/bin/sh', '-c', 'id']); // docker exec: quiet too
      await settle();
      const dockerd = lab
        .daemons()
        .filter((x) => x.name.includes('docker'))
        .map((x) => x.process.pid);
      const fromDaemon = cw.events
        .filter(
          (e) => (e.containerCreated || e.containerStarted) && (e.containerCreated ?? e.containerStarted).container.runtime === 'UNKNOWN',
        )
        .map((e) => e.containerCreated ?? e.containerStarted)
        .filter(
          (x) => dockerd.includes(x.process?.pid) || dockerd.includes(x.process?.ppid) || /dockerd|containerd/.test(x.process?.exe ?? ''),
        );
      expect(fromDaemon).toEqual([]);
      // (image.* rules fire for the lab's freshly imported image: not this test's business.)
      expect(dets((x) => about(d)(x) && LOUD.includes(x.severity) && !x.ruleId.startsWith('image.')).map((x) => x.ruleId)).toEqual([]);
      await lab.stop(d);
    } finally {
      await lab.stop(outer);
    }
  });

  it('stays below MEDIUM: sandboxes made in containers (a user namespace of their own), host services using unshare', async () => {
    const START_RULES = ['escape.privileged-container', 'escape.host-namespaces', 'escape.root-container', 'escape.sensitive-mount'];
    // An ordinary container whose sandbox works from children that never exec.
    const c = await lab.start('runc', { args: ['/bin/sleep', '300'], mounts: [{ source: fx, destination: '/t' }] });
    // A container with every capability whose sandbox is `unshare -Urmpf` + chroot + exec, as browsers and build tools do.
    const p = await lab.start('runc', { args: ['/bin/sleep', '300'], privileged: true, mounts: [{ source: fx, destination: '/t' }] });
    try {
      const r1 = await lab.exec(c, ['/t/no-exec-sandbox', '/t/nestroot', 'user']);
      expect(r1.code, r1.stderr).toBe(0);
      const r2 = await lab.exec(p, ['/bin/unshare', '-Urmpf', '/bin/chroot', '/t/nestroot', '/bin/busybox', 'true']);
      expect(r2.code, r2.stderr).toBe(0);
      for (const x of [c, p]) {
        const n = await waitDet('deploy.from-container', (d) => d.container?.labels?.['ctrwatch.io/made-in'] === x.id);
        expect(n.severity).toBe('LOW');
        expect(n.attributes.userNamespace).toBe('own');
        expect(n.container.privileged ?? false).toBe(false); // proto3 JSON leaves false out
      }
      const quietTag = `quiet-${tag}`;
      execFileSync('unshare', ['-m', '/bin/sh', '-c', 'mount -t tmpfs none /mnt; true', quietTag]);
      execFileSync('unshare', ['-Urm', '/bin/sh', '-c', 'true', quietTag]);
      await settle();
      const ours = (d: Ev) => about(c)(d) || about(p)(d) || [c.id, p.id].includes(d.container?.labels?.['ctrwatch.io/made-in']);
      const loud = dets((d) => LOUD.includes(d.severity) && ours(d) && !(about(p)(d) && START_RULES.includes(d.ruleId)));
      expect(loud.map((d) => `${d.ruleId}:${d.severity}:${d.container?.id}`)).toEqual([]);
      expect(dets((d) => JSON.stringify(d.chain ?? []).includes(quietTag))).toEqual([]);
    } finally {
      await lab.stop(c);
      await lab.stop(p);
    }
  });
});
