// The kernel holds back the fork of a followed process that runs what it exec'd, when the child
// shares all its namespaces, its user namespace and its cgroup: the child's exec and exit carry
// what the fork would. Forks that could start something new are still sent at once.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecRecord, ForkRecord, KernelRecord } from '../../src/decode/records';
import { ProcessTable } from '../../src/process/table';
import { canRunKernelTests } from '../support/env';
import { RuntimeLab, type RuntimeName } from '../support/runtimes';
import { RecordingSensor } from '../support/sensor';

const tag = () => `cwhold-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const execOf = (records: KernelRecord[], arg: string) => records.filter((r): r is ExecRecord => r.kind === 'exec' && r.argv.includes(arg));
const forksOf = (records: KernelRecord[], tgid: number) =>
  records.filter((r): r is ForkRecord => r.kind === 'fork' && r.task.tgid === tgid);
const held = (s: RecordingSensor) => s.sensor.counters().kernel.forks_held;
/** Where cgroup2 is mounted (/sys/fs/cgroup on a unified node, /sys/fs/cgroup/unified on a hybrid one). */
const cgroup2 = () =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .find((f) => f[f.indexOf('-') + 1] === 'cgroup2')?.[4];

describe.runIf(canRunKernelTests)('kernel: forks held back until the child does something', () => {
  let lab: RuntimeLab;
  let s: RecordingSensor;
  let fx: string;

  beforeAll(async () => {
    lab = await RuntimeLab.open();
    fx = mkdtempSync(join(lab.dir, 'fx-'));
    for (const f of ['no-exec-sandbox', 'fork-into'])
      execFileSync('gcc', ['-static', '-O2', '-o', join(fx, f), join(__dirname, `../fixtures/bin/${f}.c`)]);
    s = new RecordingSensor();
  });

  afterAll(async () => {
    s?.close();
    await lab?.close();
  });

  it.each(['runc', 'crun'] as RuntimeName[])(
    "%s: a shell's fork-and-exec children send exec and exit only; a subshell is sent late, before its own child's exec; lineage holds",
    async (runtime) => {
      const t = tag();
      const before = held(s);
      // Three commands forked and exec'd by the entry shell; a subshell that forks one command and
      // execs the last itself; then the entry stays.
      const c = await lab.start(runtime, {
        args: [
          '/bin/sh',
          '-c',
          `for i in 1 2 3; do /bin/true held-${t}; done; (/bin/true late-${t}; /bin/true last-${t}); exec /bin/sleep 300`,
        ],
      });
      try {
        const last = await s.waitFor((r): r is ExecRecord => r.kind === 'exec' && r.argv.includes(`last-${t}`), 10_000);
        const late = await s.waitFor((r): r is ExecRecord => r.kind === 'exec' && r.argv.includes(`late-${t}`));
        const sh = last.task.ppid; // the entry shell: the subshell's parent
        const entry = s.records.find((r): r is ExecRecord => r.kind === 'exec' && r.task.tgid === sh && r.argv.includes('-c'));
        expect(entry?.task.flags & 3).toBe(3); // in a container, followed

        const plain = execOf(s.records, `held-${t}`);
        expect(plain).toHaveLength(3);
        for (const e of plain) {
          expect(e.task.ppid).toBe(sh);
          expect(forksOf(s.records, e.task.tgid)).toEqual([]);
          await s.waitFor((r) => r.kind === 'exit' && r.task.tgid === e.task.tgid);
        }

        // The subshell (it exec'd last-…) was held back, then sent late when it forked late-….
        const sub = last.task.tgid;
        expect(late.task.ppid).toBe(sub);
        const subForks = forksOf(s.records, sub);
        expect(subForks).toHaveLength(1);
        expect(subForks[0]).toMatchObject({ late: true, newNs: [] });
        expect(subForks[0].task.ppid).toBe(sh);
        // Its child runs the same program in the same namespaces: held back too, after the late record.
        expect(forksOf(s.records, late.task.tgid)).toEqual([]);
        expect(s.records.indexOf(subForks[0])).toBeLessThan(s.records.indexOf(late));
        expect(held(s) - before).toBeGreaterThanOrEqual(5);

        // User space builds the whole line from these records alone: no /proc lookup.
        const table = new ProcessTable({ lookup: () => undefined });
        for (const r of s.records) table.apply(r);
        const p = table.get(late.task.tgid, late.task.startNs)!;
        expect(table.chain(p, 3).map((x) => x.tgid)).toEqual([late.task.tgid, sub, sh]);
        expect(table.get(plain[0].task.tgid)?.ppid).toBe(sh);
      } finally {
        await lab.stop(c);
      }
    },
  );

  it("a child born into a new pid namespace is sent at once, though its parent runs what it exec'd", () => {
    const t = tag();
    // unshare(CLONE_NEWPID) without --fork, then exec sh: sh's first child is pid 1 of the new namespace.
    const r = spawnSync('unshare', ['--pid', '/bin/sh', '-c', `/bin/true pid1-${t}; true`]);
    expect(r.status).toBe(0);
    return s
      .waitFor((x): x is ExecRecord => x.kind === 'exec' && x.argv.includes(`pid1-${t}`))
      .then((ex) => {
        const f = forksOf(s.records, ex.task.tgid);
        expect(f).toHaveLength(1);
        expect(f[0].newNs).toContain('pid');
        expect(f[0].task.nspid).toBe(1);
      });
  });

  it('a child cloned into a new user namespace or another cgroup is sent at once (no unshare, setns or exec of its own)', async () => {
    // unshare -m execs the helper (followed, it exec'd); clone3 puts its child elsewhere without
    // a new nsproxy (CLONE_NEWUSER) or with the same one (CLONE_INTO_CGROUP).
    const forkOf = async (args: string[]) => {
      const r = spawnSync('unshare', ['--mount', join(fx, 'fork-into'), ...args]);
      expect(r.status, r.stderr.toString()).toBe(0);
      const ex = await s.waitFor(
        (x): x is ExecRecord => x.kind === 'exec' && x.filename.endsWith('/fork-into') && x.argv.join(' ').endsWith(args.join(' ')),
      );
      expect(ex.task.flags & 2).toBe(2);
      await s.waitFor((x) => x.kind === 'exit' && x.task.tgid === ex.task.tgid);
      return s.records.filter((x): x is ForkRecord => x.kind === 'fork' && x.task.ppid === ex.task.tgid);
    };
    const user = await forkOf(['user']);
    expect(user).toHaveLength(1);
    expect(user[0].newNs).toContain('user');

    const root = cgroup2();
    expect(root, 'a cgroup2 mount').toBeDefined();
    const dir = join(root!, tag());
    mkdirSync(dir);
    try {
      const into = await forkOf(['cgroup', dir]);
      expect(into).toHaveLength(1);
      expect(into[0].late).toBe(false);
    } finally {
      rmdirSync(dir);
    }
  });

  it('a process that changes root after its exec is a sandbox: its forks are sent at once', async () => {
    // unshare -m execs the sandbox (followed, it exec'd); it then unshares and chroots, and forks two
    // children that never exec: those forks are what finds such a container.
    const root = mkdtempSync(join(fx, 'root-'));
    try {
      const r = spawnSync('unshare', ['--mount', join(fx, 'no-exec-sandbox'), root]);
      expect(r.status, r.stderr.toString()).toBe(0);
      const ex = await s.waitFor(
        (x): x is ExecRecord => x.kind === 'exec' && x.filename.endsWith('/no-exec-sandbox') && x.argv.includes(root),
      );
      expect(ex.task.flags & 2).toBe(2); // followed when it exec'd
      await s.waitFor((x) => x.kind === 'syscall' && x.syscall === 'chroot' && x.task.tgid === ex.task.tgid);
      const kids = async () => {
        await s.waitFor((x) => x.kind === 'exit' && x.task.tgid === ex.task.tgid);
        return s.records.filter((x): x is ForkRecord => x.kind === 'fork' && x.task.ppid === ex.task.tgid);
      };
      const forks = await kids();
      expect(forks).toHaveLength(2);
      for (const f of forks) expect(f.late).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
