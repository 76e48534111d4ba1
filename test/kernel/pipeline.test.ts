import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CgroupRecord, ExecRecord, ExitRecord, ForkRecord, KernelRecord, SyscallRecord } from '../../src/decode/records';
import { readHostFacts } from '../../src/host';
import { KernelSensor } from '../../src/kernel/sensor';
import { canRunKernelTests, scaled } from '../support/env';
import { RuntimeLab, runtimeReady } from '../support/runtimes';
import { RecordingSensor } from '../support/sensor';

const nsIno = (pid: number | string, ns: string) => statSync(`/proc/${pid}/ns/${ns}`).ino;
const tag = () => `cwtest-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const CLONE_NEWNS = 0x00020000;
const CLONE_NEWUTS = 0x04000000;
const isExec =
  (argTag: string) =>
  (r: KernelRecord): r is ExecRecord =>
    r.kind === 'exec' && r.argv.includes(argTag);

describe.runIf(canRunKernelTests)('kernel pipeline (real kernel)', () => {
  let s: RecordingSensor;
  let all: RecordingSensor; // execAll: every host exec, to check exec records of any program
  beforeAll(() => {
    s = new RecordingSensor();
    all = new RecordingSensor({ execAll: true });
  });
  afterAll(() => {
    s?.close();
    all?.close();
  });

  it('sends no exec of a plain host program, but those of container tooling', async () => {
    const t = tag();
    spawnSync('/bin/sh', ['-c', 'true', t]);
    const un = spawnSync('unshare', ['--mount', '/bin/true', t]);
    expect(un.status).toBe(0);
    const ex = await s.waitFor((r): r is ExecRecord => isExec(t)(r) && r.argv[0] === 'unshare');
    expect(ex.task.comm).toBe('unshare');
    expect(s.records.some((r) => isExec(t)(r) && r.filename === '/bin/sh')).toBe(false);
  });

  it('reports an exec with its argv, identity and namespaces; a plain host process sends no exit', async () => {
    const s = all;
    const t = tag();
    const child = spawn('/bin/sh', ['-c', 'read x; exit 7', t], { stdio: ['pipe', 'ignore', 'ignore'] });
    const ex = await s.waitFor(isExec(t));
    // /proc while it lives: start time (clock ticks since boot) and namespaces.
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const startTicks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const nsMnt = nsIno(child.pid!, 'mnt');
    child.stdin!.end('\n');
    await new Promise((res) => child.once('exit', res));

    expect(ex.filename).toBe('/bin/sh');
    expect(ex.argv).toEqual(['/bin/sh', '-c', 'read x; exit 7', t]);
    expect(ex.task).toMatchObject({ pid: child.pid, tgid: child.pid, ppid: process.pid, uid: 0, euid: 0, comm: 'sh' });
    expect(ex.task.ns.mnt).toBe(nsMnt);
    expect(ex.task.ns.pid).toBe(nsIno('self', 'pid'));
    expect(ex.task.ns.net).toBe(nsIno('self', 'net'));
    // CLK_TCK is 100 on Linux: the kernel's start time in ns, in ticks, is /proc's.
    expect(Math.floor(Number(ex.task.startNs) / 1e7)).toBe(startTicks);
    expect(ex.task.flags & 3).toBe(0); // not in a container, not followed
    expect(ex.exe.ino).toBe(BigInt(statSync('/bin/sh').ino));
    await new Promise((res) => setTimeout(res, 100));
    s.sensor.drain();
    expect(s.records.some((r) => r.kind === 'exit' && r.task.tgid === child.pid)).toBe(false);
  });

  it("cuts a long filename and argv as the kernel bounds them, argv read after the filename; the exe's times and the capabilities as /proc has them", async () => {
    const s = all;
    const t = tag();
    // A path over CW_FILENAME_LEN (256) bytes: components of at most 255.
    const dir = join('/tmp', t, 'd'.repeat(120), 'e'.repeat(120));
    mkdirSync(dir, { recursive: true });
    const prog = join(dir, 'shell');
    let child: ReturnType<typeof spawn> | undefined;
    try {
      writeFileSync(prog, readFileSync('/bin/sh'), { mode: 0o755 });
      const long = 'x'.repeat(1500); // argv past CW_ARGS_LEN (1024)
      // It waits on its stdin, so that /proc has it while the test reads it.
      child = spawn(prog, ['-c', 'read x', t, long], { stdio: ['pipe', 'ignore', 'ignore'] });
      const ex = await s.waitFor(isExec(t));
      const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1];

      expect(prog.length).toBeGreaterThan(256);
      expect(ex.filename).toBe(prog.slice(0, 255));
      expect(ex.argsTruncated).toBe(true);
      expect(ex.argv.slice(0, 4)).toEqual([prog, '-c', 'read x', t]);
      // 1024 bytes of argv: the program's path, '-c', 'read x' and the tag, each with its NUL, then the cut.
      expect(ex.argv[4]).toBe(long.slice(0, 1024 - (prog.length + 1) - 3 - 7 - (t.length + 1)));
      const st = statSync(prog);
      expect(ex.exe.ino).toBe(BigInt(st.ino));
      expect([ex.exe.mtime, ex.exe.ctime]).toEqual([Math.floor(st.mtimeMs / 1000), Math.floor(st.ctimeMs / 1000)]);
      expect(ex.task.capEffective).toBe(BigInt(`0x${capEff}`));
    } finally {
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((res) => child!.once('exit', res));
      }
      rmSync(join('/tmp', t), { recursive: true, force: true });
    }
  });

  it('reports the exit code and signal of followed processes', async () => {
    const t = tag();
    const r = spawnSync('unshare', ['--fork', '--pid', '--mount', '/bin/sh', '-c', 'exit 7', t]);
    expect(r.status).toBe(7);
    const ex = await s.waitFor((x): x is ExecRecord => isExec(t)(x) && x.filename === '/bin/sh');
    const exit = await s.waitFor((x): x is ExitRecord => x.kind === 'exit' && x.task.tgid === ex.task.tgid);
    expect(exit.exitStatus).toBe(7 << 8);
    expect(exit.task.startNs).toBe(ex.task.startNs);
    expect(exit.task.nspid).toBe(1);
    // PID 1 of a pid namespace ignores SIGKILL from inside it: kill its child.
    const t2 = tag();
    spawnSync('unshare', ['--fork', '--pid', '--mount', '/bin/sh', '-c', '/bin/sh -c "kill -9 \\$\\$" inner; true', t2]);
    const ex2 = await s.waitFor((x): x is ExecRecord => x.kind === 'exec' && x.argv.includes('inner') && x.task.nspid === 2);
    const exit2 = await s.waitFor((x): x is ExitRecord => x.kind === 'exit' && x.task.tgid === ex2.task.tgid);
    expect(exit2.exitStatus & 0x7f).toBe(9);
  });

  it('filters plain host forks in the kernel, but follows forks into new namespaces', async () => {
    const t = tag();
    // The subshell is a fork without exec: no record by default.
    const r = spawnSync('/bin/sh', ['-c', '(echo $$ > /dev/null); unshare --fork --pid --mount /bin/true', t]);
    expect(r.status).toBe(0);
    const ex = await all.waitFor(isExec(t));
    const sh = ex.task.tgid;
    const unshareExec = await s.waitFor((x): x is ExecRecord => x.kind === 'exec' && x.task.ppid === sh && x.argv[0] === 'unshare');
    const fork = await s.waitFor((x): x is ForkRecord => x.kind === 'fork' && x.task.ppid === unshareExec.task.tgid);
    expect(fork.newNs).toContain('pid');
    expect(fork.task.nspid).toBe(1);
    expect(fork.task.flags & 3).toBe(3); // in a container, followed
    const inner = await s.waitFor((x): x is ExecRecord => x.kind === 'exec' && x.task.tgid === fork.task.tgid);
    expect(inner.filename).toBe('/bin/true');
    expect(s.records.some((x) => x.kind === 'fork' && x.task.ppid === sh)).toBe(false);
  });

  it('reports unshare and setns with flags, result and the namespaces before and after', async () => {
    const t = tag();
    const holder = spawn('unshare', ['--mount', '--uts', '/bin/sh', '-c', 'read x', t], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      const ex = await s.waitFor(isExec(t));
      const un = await s.waitFor(
        (r): r is SyscallRecord => r.kind === 'syscall' && r.syscall === 'unshare' && r.task.tgid === ex.task.tgid,
      );
      const mntNs = nsIno(holder.pid!, 'mnt');
      expect(un.ret).toBe(0);
      expect(Number(un.args[0]) & (CLONE_NEWNS | CLONE_NEWUTS)).toBe(CLONE_NEWNS | CLONE_NEWUTS);
      expect(un.oldNs.mnt).toBe(nsIno('self', 'mnt'));
      expect(un.task.ns.mnt).toBe(mntNs);
      expect(un.task.ns.uts).toBe(nsIno(holder.pid!, 'uts'));

      // nsenter into it: a successful setns lands in its mount namespace.
      const t2 = tag();
      execFileSync('nsenter', ['--target', String(holder.pid), '--mount', '--uts', '/bin/true', t2]);
      const enter = await s.waitFor(isExec(t2));
      const setns = s.records.filter(
        (r): r is SyscallRecord => r.kind === 'syscall' && r.syscall === 'setns' && r.task.tgid === enter.task.tgid,
      );
      expect(setns.length).toBeGreaterThanOrEqual(2);
      expect(setns.every((r) => r.ret === 0)).toBe(true);
      expect(setns.some((r) => Number(r.args[1]) === CLONE_NEWNS && r.task.ns.mnt === mntNs && r.oldNs.mnt !== mntNs)).toBe(true);
    } finally {
      holder.stdin!.end('\n');
    }
    // A failing setns (a net namespace fd given as a mount namespace) of a followed process carries its errno.
    const t3 = tag();
    spawnSync('unshare', ['--mount', 'nsenter', `--mount=/proc/self/ns/net`, '/bin/true', t3]);
    const nse = await s.waitFor((r) => r.kind === 'exec' && r.argv[0] === 'nsenter' && r.argv.includes(t3));
    const bad = await s.waitFor(
      (r): r is SyscallRecord => r.kind === 'syscall' && r.syscall === 'setns' && r.ret < 0 && r.task.tgid === nse.task.tgid,
    );
    expect(bad.ret).toBe(-22); // EINVAL
    // The same failure from a plain host process (neither followed nor in a container) is counted, not sent.
    s.sensor.drain();
    const before = s.sensor.counters().kernel.failed_unfollowed;
    const t4 = tag();
    const host = spawnSync('nsenter', [`--mount=/proc/self/ns/net`, '/bin/true', t4]);
    await s.waitFor((r) => r.kind === 'exec' && r.argv[0] === 'nsenter' && r.argv.includes(t4));
    s.sensor.drain();
    expect(s.sensor.counters().kernel.failed_unfollowed).toBeGreaterThan(before);
    expect(s.records.filter((r) => r.kind === 'syscall' && r.task.tgid === host.pid)).toEqual([]);
  });

  it('reports cgroup mkdir, attach and rmdir in the tracked hierarchy with the kernfs id', async () => {
    const cg = readHostFacts().cgroup;
    expect(cg.mount, 'tracked cgroup hierarchy is mounted').toBeTruthy();
    const name = tag();
    const dir = join(cg.mount!, name);
    mkdirSync(dir);
    const id = BigInt(statSync(dir).ino);
    const child = spawn('/bin/sh', ['-c', 'read x'], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      writeFileSync(join(dir, 'cgroup.procs'), String(child.pid));
      const mk = await s.waitFor((r): r is CgroupRecord => r.kind === 'cgroup_mkdir' && r.path === `/${name}`);
      expect(mk.cgroupId).toBe(id);
      expect(mk.level).toBe(1);
      expect(mk.hierarchyId).toBe(cg.hierarchy);
      expect(mk.task.tgid).toBe(process.pid); // who made it
      const at = await s.waitFor((r): r is CgroupRecord => r.kind === 'cgroup_attach' && r.path === `/${name}`);
      expect(at.task.tgid).toBe(child.pid);
      expect(at.task.cgroupId).toBe(id); // records carry the cgroup the task is in now
    } finally {
      child.stdin!.end('\n');
      await new Promise((res) => child.once('exit', res));
      rmdirSync(dir);
    }
    const rm = await s.waitFor((r): r is CgroupRecord => r.kind === 'cgroup_rmdir' && r.path === `/${name}`);
    expect(rm.cgroupId).toBe(id);
  });

  it('counts what the kernel sent, and the addon delivered all of it', async () => {
    // The node keeps running while we look: everything sent before the first
    // reading must have arrived by the drain after it, and no more than was sent.
    const sent = (k: Record<string, number>) =>
      Object.entries(k)
        .filter(([n]) => n.startsWith('sent_'))
        .reduce((a, [, v]) => a + v, 0);
    const before = s.sensor.counters();
    s.sensor.drain();
    const c = s.sensor.counters();
    expect(c.records).toBeGreaterThanOrEqual(sent(before.kernel));
    expect(c.records).toBeLessThanOrEqual(sent(c.kernel));
    expect(c.records).toBe(s.records.length + s.decode.errors);
    expect(c.dropped).toBe(0);
  });
});

/** Opens a fifo for writing once a reader has it open (ENXIO until then), by `deadline`; never blocks. */
async function openFifoWriter(path: string, deadline: number): Promise<number> {
  for (;;) {
    try {
      return openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() > deadline) throw e;
      await new Promise((res) => setTimeout(res, 20));
    }
  }
}

describe.runIf(canRunKernelTests)('kernel pipeline options', () => {
  it('traceAll sends plain host forks too', async () => {
    const s = new RecordingSensor({ traceAll: true });
    try {
      const t = tag();
      spawnSync('/bin/sh', ['-c', '(echo $$ > /dev/null); true', t]);
      const ex = await s.waitFor(isExec(t));
      await s.waitFor((r) => r.kind === 'fork' && r.task.ppid === ex.task.tgid);
    } finally {
      s.close();
    }
  });

  it('a tiny ring buffer under load counts its drops: received + dropped = sent + dropped, none lost silently', async () => {
    // One page of ring and no wake-ups or drains during the storm: most records cannot fit.
    const s = new RecordingSensor({ ringBytes: 4096, drainMs: 60_000, wakeGapNs: 1e15, execAll: true });
    try {
      const t = tag();
      const n = 300;
      // Awaited, not spawnSync: under emulation the storm outlasts vitest's 60 s for a worker's
      // call. The reader stays asleep meanwhile: no record of it wakes it, the drain is a minute off.
      const storm = spawn('/bin/sh', ['-c', `i=0; while [ $i -lt ${n} ]; do /bin/true ${t}; i=$((i+1)); done`], { stdio: 'ignore' });
      await new Promise((res) => storm.once('exit', res));
      const sent = (k: Record<string, number>) =>
        Object.entries(k)
          .filter(([n]) => n.startsWith('sent_'))
          .reduce((a, [, v]) => a + v, 0);
      const before = s.sensor.counters();
      s.sensor.drain();
      const c = s.sensor.counters();
      const ours = s.records.filter((r) => r.kind === 'exec' && r.argv.includes(t)).length;
      expect(c.kernel.dropped_exec).toBeGreaterThan(0);
      expect(ours).toBeLessThan(n);
      // Every record the kernel says it sent arrived (the node goes on meanwhile:
      // at least what was sent before the drain, at most what was sent after it);
      // all the others were counted as dropped.
      expect(c.records).toBeGreaterThanOrEqual(sent(before.kernel));
      expect(c.records).toBeLessThanOrEqual(sent(c.kernel));
      expect(c.kernel.sent_exec + c.kernel.dropped_exec).toBeGreaterThanOrEqual(n);
      expect(ours + c.kernel.dropped_exec).toBeGreaterThanOrEqual(n);
    } finally {
      s.close();
    }
  });

  it("a container's start wakes the reader even where the wake gap holds back every other record", async () => {
    // No drain for a minute, and a wake gap longer than the node's uptime: no urgent record may
    // wake the reader, but the first exec of a pid 1 in new namespaces is a start, which does.
    const s = new RecordingSensor({ drainMs: 60_000, wakeGapNs: 1e15 });
    const t = tag();
    const p = spawn('unshare', ['--pid', '--fork', '--kill-child', '/bin/sh', '-c', 'sleep 1', t], { stdio: 'ignore' });
    try {
      const end = Date.now() + 3000;
      let start: ExecRecord | undefined;
      // Never drain(): only the event loop's poll on the ring may deliver it.
      while (!start && Date.now() < end) {
        await new Promise((res) => setTimeout(res, 20));
        start = s.records.find((r): r is ExecRecord => isExec(t)(r) && r.task.nspid === 1); // not unshare's own exec
      }
      expect(start, 'the start arrived without a drain').toBeDefined();
      expect(start!.filename).toBe('/bin/sh');
    } finally {
      p.kill('SIGKILL');
      s.close();
    }
  });

  it.runIf(runtimeReady('runc'))(
    "an idle reader parks its drain timer, and a container's next process wakes it: read at once, not at the parked tick",
    async () => {
      // Parked, the timer would tick next in an hour: only the kernel's wake-up can deliver the record.
      let s: RecordingSensor | undefined;
      let lab: RuntimeLab | undefined;
      const gate = mkdtempSync('/tmp/cwtest-gate-');
      const t = tag();
      try {
        s = new RecordingSensor({ parkAfterMs: 50, parkedMs: 3_600_000 });
        lab = await RuntimeLab.open();
        execFileSync('mkfifo', [join(gate, 'go')]);
        // The container's shell waits on the fifo, runs a program (a bulk record, no wake-up of its
        // own), then waits again: no exec of its pid 1, which would wake the reader by itself.
        const c = await lab.start('runc', {
          args: ['/bin/sh', '-c', `read x < /gate/go; /bin/true ${t}; read x < /gate/go`],
          mounts: [{ source: gate, destination: '/gate' }],
        });
        expect(c.initPid).toBeGreaterThan(0);
        const rec = s;
        const parked = () => rec.sensor.counters().consumer.parked;
        const end = Date.now() + scaled(10_000);
        while (!parked() && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
        expect(parked(), 'the reader parked on a quiet node').toBe(true);
        const before = s.sensor.counters().consumer;
        // The host end of the fifo, written without blocking the event loop (the shell has it
        // open for reading by now, or it is gone: then the open fails, and so does the test).
        const fd = await openFifoWriter(join(gate, 'go'), Date.now() + scaled(5000));
        writeSync(fd, 'go\n');
        closeSync(fd);
        const until = Date.now() + scaled(5000);
        let ex: ExecRecord | undefined;
        // Never drain(): only the event loop (the rings' poll, then the drain timer) may deliver it.
        while (!ex && Date.now() < until) {
          await new Promise((res) => setTimeout(res, 20));
          ex = s.records.find((r): r is ExecRecord => isExec(t)(r) && r.filename === '/bin/true');
        }
        expect(ex, 'the exec arrived, long before the parked tick').toBeDefined();
        expect(ex!.task.flags & 1).toBe(1); // in the container
        expect(s.sensor.counters().consumer.pollWakes, 'a ring woke the reader').toBeGreaterThan(before.pollWakes);
        await lab.stop(c);
      } finally {
        s?.close();
        try {
          await lab?.close();
        } finally {
          rmSync(gate, { recursive: true, force: true });
        }
      }
    },
  );

  it("a handler's throw inside drain() reaches its caller, and the next drain still delivers", () => {
    // No drain timer, no forced wake-up: only the test's drain() calls run the handler.
    let failNext = true;
    const got: Buffer[] = [];
    const s = new KernelSensor({ logger: pino({ level: 'silent' }), drainMs: 60_000, wakeGapNs: 1e15 }, (buf) => {
      if (failNext) {
        failNext = false;
        throw new Error('handler failed');
      }
      got.push(buf);
    });
    s.start();
    try {
      const t = tag();
      expect(spawnSync('unshare', ['--mount', '/bin/true', t]).status).toBe(0);
      expect(() => s.drain()).toThrow('handler failed');
      expect(spawnSync('unshare', ['--mount', '/bin/true', t]).status).toBe(0);
      s.drain();
      expect(got.length).toBeGreaterThan(0);
    } finally {
      s.close();
    }
  });

  it('close() is idempotent and leaves no program attached', () => {
    // Other sensors may come and go on the node meanwhile: follow this one's program ids.
    const ids = () =>
      new Set(
        (JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j']).toString()) as { id: number; name?: string }[])
          .filter((p) => p.name?.startsWith('cw_'))
          .map((p) => p.id),
      );
    const before = ids();
    const s = new RecordingSensor();
    const mine = [...ids()].filter((id) => !before.has(id));
    expect(mine.length).toBeGreaterThanOrEqual(18);
    s.close();
    s.close();
    const after = ids();
    expect(mine.filter((id) => after.has(id))).toEqual([]);
  });
});
