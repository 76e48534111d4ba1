import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KernelRecord, SyscallRecord } from '../../src/decode/records';
import { canRunKernelTests } from '../support/env';
import { CtrwatchProcess, type Ev } from '../support/ctrwatch';
import { RuntimeLab, type Started } from '../support/runtimes';
import { RecordingSensor } from '../support/sensor';

/**
 * Protecting the sensor and the doors around the syscall hooks, each by a real
 * act in a real container: signals and ptrace aimed at the sensor, bpf() and
 * io_uring from containers, the runtime socket reached under another name or
 * over TCP; next to the quiet cases (an ordinary container, docker exec, a
 * container signalling its own children). Then the kernel's own defences: a
 * flood of failing calls from an unprivileged host process is counted, not
 * sent; a container's failing calls are rate-limited with the suppression
 * counted; a fork storm that fills the bulk ring leaves the priority ring's
 * escape records intact, with exact accounting per ring.
 */
const LOUD = ['MEDIUM', 'HIGH', 'CRITICAL'];
const SIGWINCH = 28;
const SIGSTOP = 19;
const SIGCONT = 18;

function buildHelper(dir: string): string {
  const out = join(dir, 'guard-actions');
  execFileSync('gcc', ['-static', '-O2', '-o', out, join(__dirname, '../fixtures/bin/guard-actions.c')]);
  return out;
}

describe.runIf(canRunKernelTests)('protecting the sensor and the doors around it (ctrwatch run)', () => {
  let lab: RuntimeLab;
  let cw: CtrwatchProcess;
  let state: string;
  let bin: string;
  let server: Server;
  let apiPort: number;
  beforeAll(async () => {
    lab = await RuntimeLab.open();
    state = mkdtempSync(join(tmpdir(), 'cw-guard-'));
    bin = mkdtempSync(join(lab.dir, 'guard-bin-'));
    buildHelper(bin);
    // A stand-in for a runtime API on a port from the policy's list (runtimePorts is configurable).
    server = createServer((s) => s.end());
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    apiPort = (server.address() as { port: number }).port;
    const policy = join(state, 'policy.yaml');
    writeFileSync(policy, `discovery:\n  runtimePorts: [2375, 2376, 10250, 10255, ${apiPort}]\nstateDir: ${state}\n`);
    cw = await CtrwatchProcess.start(['--policy', policy]);
  });
  afterAll(async () => {
    await cw?.stop();
    await lab?.close();
    await new Promise((r) => server?.close(r));
    rmSync(state, { recursive: true, force: true });
  });

  const waitDet = (rule: string, pred: (d: Ev) => boolean = () => true, ms = 10_000) => cw.detection(rule, pred, ms);
  const about = (c: Started) => (d: Ev) => d.container?.id === c.id;
  // The rules this file is about, and every escape: an ordinary container raises none of them at MEDIUM or above.
  const OURS = /^(sensor\.|escape\.|evasion\.|discovery\.runtime-socket)/;
  const loudAbout = (c: Started) =>
    cw.events
      .filter((e) => e.detection?.container?.id === c.id && OURS.test(e.detection.ruleId) && LOUD.includes(e.detection.severity))
      .map((e) => e.detection.ruleId);
  const mounts = () => [{ source: bin, destination: '/t' }];

  it('signals to the sensor from a container are CRITICAL, whatever the signal; the sensor lives on; a container signalling its own children is quiet', async () => {
    const c = await lab.start('runc', { args: ['/bin/sleep', '300'], hostPid: true, mounts: mounts() });
    const q = await lab.start('docker', { args: ['/bin/sleep', '300'] });
    try {
      const r = await lab.exec(c, ['/t/guard-actions', 'signal', String(cw.pid), String(SIGWINCH)]);
      expect(r.stdout).toContain('-> 0 errno 0');
      const d = await waitDet('sensor.signal', (x) => about(c)(x) && x.attributes.signal === 'SIGWINCH');
      expect(d).toMatchObject({ severity: 'CRITICAL', techniques: ['T1562.001'] });
      expect(d.attributes.targetTid).toBe(String(cw.pid));

      // Stop and continue the sensor from the container: both are reported once it runs again.
      await lab.exec(c, ['/t/guard-actions', 'signal', String(cw.pid), String(SIGSTOP), String(SIGCONT)]);
      expect((await waitDet('sensor.signal', (x) => about(c)(x) && x.attributes.signal === 'SIGSTOP')).severity).toBe('CRITICAL');
      expect((await waitDet('sensor.signal', (x) => about(c)(x) && x.attributes.signal === 'SIGCONT')).severity).toBe('CRITICAL');
      expect(cw.alive).toBe(true);

      // Quiet: a container signalling its own child, and docker exec into an ordinary container.
      await lab.exec(q, ['/bin/sh', '-c', 'sleep 30 & kill $!; wait; true']);
      await lab.exec(c, ['/bin/sh', '-c', 'sleep 30 & kill -WINCH $!; kill $!; wait; true']);
      await cw.waitFor((e) => e.containerExec?.container?.id === q.id);
      await new Promise((res) => setTimeout(res, 500));
      expect(loudAbout(q)).toEqual([]);
      expect(cw.events.filter((e) => e.detection?.ruleId === 'sensor.signal' && e.detection.attributes.signal === 'SIGTERM')).toEqual([]);
      const others = cw.events.filter((e) => e.detection?.ruleId === 'sensor.signal' && e.detection.container?.id !== c.id);
      expect(others.map((e) => ({ ...e.detection, container: e.detection.container?.id, chain: e.detection.chain?.slice(0, 2) }))).toEqual(
        [],
      );
    } finally {
      await lab.stop(c);
      await lab.stop(q);
    }
  });

  it('ptrace of the sensor from a container sharing the host pid namespace is CRITICAL; the sensor lives on', async () => {
    const c = await lab.start('runc', { args: ['/bin/sleep', '300'], hostPid: true, privileged: true, mounts: mounts() });
    try {
      const r = await lab.exec(c, ['/t/guard-actions', 'seize', String(cw.pid)]);
      expect(r.stdout).toContain('-> 0 errno 0');
      const d = await waitDet('sensor.ptrace', about(c));
      expect(d).toMatchObject({ severity: 'CRITICAL', techniques: ['T1562.001'] });
      expect(d.attributes).toMatchObject({ request: 'PTRACE_SEIZE', result: '0', targetTid: String(cw.pid) });
      // The tracer has exited: the kernel detached it, and the sensor still reports.
      const after = await lab.start('runc', { args: ['/bin/true'], detach: false });
      await cw.waitFor((e) => e.containerStarted?.container?.id === after.id);
      expect(cw.alive).toBe(true);
    } finally {
      await lab.stop(c);
    }
  });

  it('bpf() from a container: CRITICAL when it takes a map by id, HIGH when the kernel refuses it', async () => {
    const priv = await lab.start('runc', { args: ['/bin/sleep', '300'], privileged: true, mounts: mounts() });
    // No CAP_SYS_ADMIN and no seccomp: the kernel itself refuses (a call seccomp refuses never reaches the syscall tracepoints).
    const plain = await lab.start('runc', { args: ['/bin/sleep', '300'], mounts: mounts() });
    try {
      const r = await lab.exec(priv, ['/t/guard-actions', 'bpf']);
      expect(r.stdout).toMatch(/MAP_GET_FD_BY_ID \d+ -> \d+ errno 0/);
      const d = await waitDet('escape.bpf-from-container', (x) => about(priv)(x) && x.attributes.cmd === 'BPF_MAP_GET_FD_BY_ID');
      expect(d).toMatchObject({ severity: 'CRITICAL', techniques: ['T1611', 'T1562.001'] });
      expect(
        (await waitDet('escape.bpf-from-container', (x) => about(priv)(x) && x.attributes.cmd === 'BPF_MAP_GET_NEXT_ID')).severity,
      ).toBe('HIGH');

      await lab.exec(plain, ['/t/guard-actions', 'bpf']);
      const refused = await waitDet('escape.bpf-from-container', about(plain));
      expect(refused.severity).toBe('HIGH');
      expect(Number(refused.attributes.result)).toBeLessThan(0);
    } finally {
      await lab.stop(priv);
      await lab.stop(plain);
    }
  });

  it('io_uring: setup from a container is MEDIUM (runc and docker); its open and connect are counted per container', async () => {
    const c = await lab.start('runc', { args: ['/bin/sleep', '300'], mounts: mounts() });
    const d = await lab.start('docker', { args: ['/bin/sleep', '300'], mounts: mounts() });
    try {
      const r = await lab.exec(c, ['/t/guard-actions', 'uring', '/etc/hostname', '127.0.0.1', '9']);
      expect(r.stdout).toMatch(/io_uring_setup -> \d+ errno 0/);
      const setup = await waitDet('escape.io-uring-setup', about(c));
      expect(setup.severity).toBe('MEDIUM');
      expect(Number(setup.attributes.result)).toBeGreaterThanOrEqual(0);
      const ops = await waitDet('evasion.io-uring-ops', about(c));
      expect(ops.severity).toBe('LOW');
      // The first operation is reported at once, the rest in the next summary; both ops reach the kernel's record.
      expect(ops.attributes.ops).toMatch(/openat 1|connect 1/);

      // docker.io 20.10's default seccomp profile still allows io_uring (later ones refuse it, and a refused call is not seen).
      await lab.exec(d, ['/t/guard-actions', 'uring', '/etc/hostname', '127.0.0.1', '9']);
      expect((await waitDet('escape.io-uring-setup', about(d))).severity).toBe('MEDIUM');
    } finally {
      await lab.stop(c);
      await lab.stop(d);
    }
  });

  it('the runtime socket under another name (bind mount, symlink) is matched by inode; a runtime API port over TCP too', async () => {
    const cli = await lab.cli('docker');
    const sock = cli[2].replace('unix://', '');
    const c = await lab.start('runc', {
      args: ['/bin/sleep', '300'],
      hostNet: true,
      mounts: [...mounts(), { source: sock, destination: '/run/api' }],
    });
    try {
      // Bind-mounted under a name that is no runtime's.
      const r = await lab.exec(c, ['/t/guard-actions', 'unix', '/run/api']);
      expect(r.stdout).toContain('-> 0 errno 0');
      const d = await waitDet('discovery.runtime-socket', (x) => about(c)(x) && x.attributes.matchedBy === 'inode');
      expect(d).toMatchObject({ severity: 'HIGH', techniques: ['T1613'] });
      expect(d.attributes.socket).toBe(sock);
      expect(d.attributes.daemon).toBe('dockerd');
      // Through a symlink with another name.
      const ln = await lab.exec(c, ['/bin/sh', '-c', 'ln -sf /run/api /tmp/x && ls -l /tmp/x /run/api']);
      expect(ln.code, ln.stdout + ln.stderr).toBe(0);
      const before = cw.events.filter((e) => e.detection?.ruleId === 'discovery.runtime-socket').length;
      const viaLink = await lab.exec(c, ['/t/guard-actions', 'unix', '/tmp/x']);
      expect(viaLink.stdout).toContain('-> 0 errno 0');
      await cw.waitFor(
        (e) =>
          e.detection?.ruleId === 'discovery.runtime-socket' &&
          cw.events.filter((x) => x.detection?.ruleId === 'discovery.runtime-socket').length > before,
      );
      // A flood of connects to a socket of its own named *.sock spends its connect bucket; the runtime socket still gets through.
      const n = cw.events.filter((e) => e.detection?.ruleId === 'discovery.runtime-socket').length;
      const flood = await lab.exec(c, ['/t/guard-actions', 'sockflood', '2000', '/run/api']);
      expect(flood.stdout).toContain('own.sock connects 2000 of 2000');
      expect(flood.stdout).toContain('connect unix /run/api -> 0 errno 0');
      await cw.waitFor(
        (e) =>
          e.detection?.ruleId === 'discovery.runtime-socket' &&
          e.detection.attributes.matchedBy === 'inode' &&
          cw.events.filter((x) => x.detection?.ruleId === 'discovery.runtime-socket').length > n,
      );
      // TCP to a runtime API port from the policy's list.
      await lab.exec(c, ['/t/guard-actions', 'tcp', '127.0.0.1', String(apiPort)]);
      const t = await waitDet('discovery.runtime-socket', (x) => about(c)(x) && x.attributes.port === String(apiPort));
      expect(t.severity).toBe('HIGH');
      expect(t.attributes.socket).toBe(`127.0.0.1:${apiPort}`);
      // A refused attempt on 2375 (nothing listens) is MEDIUM.
      await lab.exec(c, ['/t/guard-actions', 'tcp', '127.0.0.1', '2375']);
      const refused = await waitDet('discovery.runtime-socket', (x) => about(c)(x) && x.attributes.port === '2375');
      expect(refused.severity).toBe('MEDIUM');
    } finally {
      await lab.stop(c);
    }
  });
});

describe.runIf(canRunKernelTests)('the kernel keeps the rings for what matters (in-process sensor)', () => {
  let lab: RuntimeLab;
  let bin: string;
  beforeAll(async () => {
    lab = await RuntimeLab.open();
    bin = mkdtempSync(join(lab.dir, 'guard-bin-'));
    buildHelper(bin);
  });
  afterAll(async () => {
    await lab?.close();
  });

  const fromTgid = (recs: KernelRecord[], pred: (r: KernelRecord) => boolean) => recs.filter(pred);

  it('failed calls of an unprivileged host process are counted, not sent', async () => {
    const s = new RecordingSensor();
    try {
      s.sensor.drain();
      const before = s.sensor.counters().kernel.failed_unfollowed;
      // nobody cannot enter the lab's private directory: a copy it can run.
      const pub = mkdtempSync(join(tmpdir(), 'cw-guard-pub-'));
      chmodSync(pub, 0o755);
      copyFileSync(join(bin, 'guard-actions'), join(pub, 'guard-actions'));
      const r = spawnSync(join(pub, 'guard-actions'), ['failflood', '5000'], { uid: 65534, gid: 65534 });
      rmSync(pub, { recursive: true, force: true });
      expect(r.error).toBeUndefined();
      expect(r.stdout.toString()).toContain('chroot failed 5000 of 5000');
      s.sensor.drain();
      const k = s.sensor.counters().kernel;
      expect(k.failed_unfollowed - before).toBeGreaterThanOrEqual(5000);
      expect(fromTgid(s.records, (x) => x.kind === 'syscall' && x.task.tgid === r.pid)).toEqual([]);
    } finally {
      s.close();
    }
  });

  it("a container's failing calls beyond its token bucket are counted as rate_limited; the first ones are sent", async () => {
    const s = new RecordingSensor({ ratePerSec: 10, rateBurst: 20 });
    const c = await lab.start('runc', { args: ['/bin/sleep', '300'], mounts: [{ source: bin, destination: '/t' }] });
    try {
      const before = s.sensor.counters().kernel.rate_limited;
      const r = await lab.exec(c, ['/t/guard-actions', 'unshareflood', '2000']);
      expect(r.stdout).toContain('unshare failed 2000 of 2000');
      await s.waitFor((x) => x.kind === 'syscall' && x.syscall === 'unshare' && x.task.ns.mnt !== s.sensor.host.hostNs[0]);
      s.sensor.drain();
      const sent = s.records.filter(
        (x): x is SyscallRecord => x.kind === 'syscall' && x.syscall === 'unshare' && x.ret < 0 && x.task.comm === 'guard-actions',
      );
      const limited = s.sensor.counters().kernel.rate_limited - before;
      // A burst of 20, then 10 a second: a 2000-call flood sends a few dozen at most.
      expect(sent.length).toBeGreaterThanOrEqual(20);
      expect(sent.length).toBeLessThan(200);
      expect(limited).toBeGreaterThanOrEqual(2000 - sent.length);
    } finally {
      s.close();
      await lab.stop(c);
    }
  });

  it('a fork storm that fills the bulk ring leaves the escape record in the priority ring; exact accounting per ring', async () => {
    // 16 KiB of bulk ring against ~1.5 KiB exec records; the JavaScript thread is blocked while the storm runs, so nothing drains.
    const s = new RecordingSensor({ ringBytes: 16 << 10, prioRingBytes: 1 << 20 });
    const c = await lab.start('runc', { args: ['/bin/sleep', '300'], mounts: [{ source: bin, destination: '/t' }] });
    try {
      const cli = await lab.cli('runc');
      s.sensor.drain();
      const before = s.sensor.counters().kernel;
      const out = execFileSync(cli[0], [...cli.slice(1), 'exec', c.id, '/t/guard-actions', 'storm', '2000', '/bin/true'], {
        timeout: 120_000,
      }).toString();
      expect(out).toMatch(/storm 2000 done; mount cgroup -> -1/);
      const mount = await s.waitFor(
        (x) => x.kind === 'syscall' && x.syscall === 'mount' && x.fstype === 'cgroup' && x.path1 === '/tmp/cg-storm',
      );
      expect((mount as SyscallRecord).ret).toBeLessThan(0);
      s.close(); // detaches first, then drains the rest: nothing can be sent after the final count
      const k = s.sensor.counters();
      expect(k.kernel.ring_bulk_dropped - before.ring_bulk_dropped).toBeGreaterThan(1000);
      expect(k.kernel.ring_prio_dropped).toBe(0);
      expect(k.kernel.dropped_syscall).toBe(0);
      // Every record the kernel put in a ring was taken out of that ring, and every drop is in both tallies.
      expect(k.ringRecords.bulk).toBe(k.kernel.ring_bulk_sent);
      expect(k.ringRecords.prio).toBe(k.kernel.ring_prio_sent);
      const perType = Object.entries(k.kernel)
        .filter(([n]) => n.startsWith('dropped_'))
        .reduce((a, [, v]) => a + v, 0);
      expect(perType).toBe(k.kernel.ring_bulk_dropped + k.kernel.ring_prio_dropped);
      expect(k.records).toBe(k.kernel.ring_bulk_sent + k.kernel.ring_prio_sent);
    } finally {
      s.close();
      await lab.stop(c);
    }
  });
});
