import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KERNEL_CLASSES, KILLABLE } from '../../src/detect/actions';
import { Containment } from '../../src/contain/containment';
import { armFromPolicy, containerVerdict, fromKernel, KernelContainment, type ContainPort } from '../../src/contain/kernel';
import type { ContainerFacts } from '../../src/container/lifecycle';
import { Arm, ContainerVerdict, KILL_CLASSES, KILL_OUTCOMES, KILL_REASONS } from '../../src/decode/layout';
import type { KernelKill } from '../../src/decode/records';
import { DEFAULT_POLICY, parsePolicy, type Policy } from '../../src/detect/policy';
import type { Finding } from '../../src/detect/types';

const ROOT = join(__dirname, '../..');
const log = pino({ level: 'silent' });

/**
 * The kernel's decision itself (bpf/contain_decide.h, the code the BPF
 * programs and the BPF-LSM deny path run), compiled for the host and fed
 * cases: the deny path is tested here, where no kernel with BPF-LSM is.
 */
describe('the kernel containment decision (bpf/contain_decide.h, host build)', () => {
  let dir: string;
  let bin: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cw-decide-'));
    bin = join(dir, 'decide');
    execFileSync('cc', ['-Wall', '-Werror', `-I${join(ROOT, 'bpf')}`, '-o', bin, join(ROOT, 'test/fixtures/contain/decide.c')]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const run = (cases: number[][]) =>
    execFileSync(bin, { input: cases.map((c) => c.join(' ')).join('\n') + '\n' })
      .toString()
      .trim()
      .split('\n')
      .map((l) => {
        const [act, outcome, reason] = l.split(' ').map(Number);
        return { do: ['nothing', 'kill', 'deny'][act], outcome: KILL_OUTCOMES[outcome] || 'none', reason: KILL_REASONS[reason] || 'none' };
      });
  // arm tgid self verdict kthread inside can_signal lsm
  const SELF = 50;
  const base = [Arm.KILL, 4242, SELF, ContainerVerdict.ARMED, 0, 0, 1, 0];
  const with_ = (i: number, v: number) => base.map((x, j) => (j === i ? v : x));

  it('kills, denies under BPF-LSM, reports dry-run, and only when armed', () => {
    expect(
      run([
        base,
        with_(7, 1),
        with_(0, Arm.DRY_RUN),
        with_(0, Arm.REPORT),
        [Arm.DRY_RUN, 4242, SELF, ContainerVerdict.ARMED, 0, 0, 1, 1],
        with_(6, 0),
      ]),
    ).toEqual([
      { do: 'kill', outcome: 'killed', reason: 'none' },
      { do: 'deny', outcome: 'denied', reason: 'none' },
      { do: 'nothing', outcome: 'would_kill', reason: 'none' },
      { do: 'nothing', outcome: 'none', reason: 'none' },
      { do: 'nothing', outcome: 'would_kill', reason: 'none' }, // dry-run under LSM denies nothing
      { do: 'nothing', outcome: 'failed', reason: 'no_helper' }, // user space kills instead
    ]);
  });

  it('never: kernel threads, the sensor, the host PID 1, allowlisted or unknown containers, its own container; in deny mode too', () => {
    const cases = [
      with_(4, 1),
      with_(1, SELF),
      with_(1, 1),
      with_(3, ContainerVerdict.SPARED),
      with_(3, ContainerVerdict.UNKNOWN),
      with_(5, 1),
    ];
    const want = ['kthread', 'self', 'host_init', 'allowlisted', 'not_container', 'inside'];
    for (const lsm of [0, 1]) {
      const out = run(cases.map((c) => c.map((x, j) => (j === 7 ? lsm : x))));
      expect(out).toEqual(want.map((reason) => ({ do: 'nothing', outcome: 'spared', reason })));
    }
    // Dry-run says what would be killed, never what is spared.
    expect(run([[Arm.DRY_RUN, 1, SELF, ContainerVerdict.ARMED, 0, 0, 1, 0]])).toEqual([
      { do: 'nothing', outcome: 'spared', reason: 'host_init' },
    ]);
  });
});

describe('arming and naming from the policy', () => {
  it('arms each kernel class from its rule: kill, dry-run, report, and a disabled rule arms nothing', () => {
    const p = parsePolicy(
      [
        'rules:',
        '  escape.setns-host: { action: kill }',
        '  escape.kernel-control-write: { action: dry-run }',
        '  escape.mount-device: { action: report }',
        '  escape.bpf-from-container: { enabled: false, action: kill }',
        '  drift.exec-new-file: { action: kill }',
      ].join('\n'),
    );
    const arm = armFromPolicy(p);
    expect(arm).toHaveLength(KILL_CLASSES.length);
    const by = Object.fromEntries(KILL_CLASSES.map((c, i) => [c, arm[i]]));
    expect(by).toMatchObject({ setns_host: Arm.KILL, control_write: Arm.DRY_RUN, mount_device: Arm.REPORT, bpf: Arm.REPORT });
    expect(armFromPolicy(DEFAULT_POLICY).every((a) => a === Arm.REPORT)).toBe(true);
  });

  it('every kernel rule has classes, every class one rule', () => {
    const kernelRules = Object.entries(KILLABLE)
      .filter(([, p]) => p === 'kernel')
      .map(([r]) => r);
    expect(Object.keys(KERNEL_CLASSES).sort()).toEqual(kernelRules.sort());
    expect(Object.values(KERNEL_CLASSES).flat().sort()).toEqual(KILL_CLASSES.slice(1).sort());
  });

  it('a container is spared for an allowlisted image or a trusted creator, else armed', () => {
    const p: Policy = { ...DEFAULT_POLICY, imageAllow: ['reg/*'], trustedCreators: ['buildkitd'] };
    expect(containerVerdict(p, 'reg/app:1', '/usr/bin/runc')).toBe(ContainerVerdict.SPARED);
    expect(containerVerdict(p, 'other/app:1', '/usr/local/bin/buildkitd')).toBe(ContainerVerdict.SPARED);
    expect(containerVerdict(p, 'other/app:1', '/usr/bin/runc')).toBe(ContainerVerdict.ARMED);
    expect(containerVerdict(p, undefined, undefined)).toBe(ContainerVerdict.ARMED);
  });

  it("names a container's own cgroup once, renames it when it changes, forgets it on exit; never a shared cgroup", () => {
    const calls: [string, ...unknown[]][] = [];
    const port: ContainPort = {
      setKillArm: (a) => calls.push(['arm', a]),
      setContainer: (cg, v) => calls.push(['set', cg, v]),
      setHostFs: () => calls.push(['fs']),
    };
    const k = new KernelContainment({ policy: { ...DEFAULT_POLICY, imageAllow: ['ok/*'] }, port, logger: log });
    const c = { cgroupId: 77n, status: 'created' } as ContainerFacts;
    k.container(c, true, undefined);
    k.container(c, true, undefined);
    k.container(c, true, 'ok/x'); // enriched further: now allowlisted
    k.container({ cgroupId: 1n, status: 'started' } as ContainerFacts, true, undefined); // the root cgroup
    k.container({ cgroupId: 90n, status: 'started' } as ContainerFacts, false, undefined); // shared with its creator
    k.container({ cgroupId: 91n, status: 'started' } as ContainerFacts, true, undefined, 91n); // the sensor's own
    k.container({ cgroupId: 92n, status: 'created' } as ContainerFacts, true, undefined, 0n, true); // an engine's, image not read yet
    c.cgroupId = 78n;
    k.container(c, true, 'ok/x');
    k.exited(c);
    k.exited(c);
    expect(calls).toEqual([
      ['set', 77n, ContainerVerdict.ARMED],
      ['set', 77n, ContainerVerdict.SPARED],
      ['set', 91n, ContainerVerdict.SPARED],
      ['set', 77n, ContainerVerdict.UNKNOWN],
      ['set', 78n, ContainerVerdict.SPARED],
      ['set', 78n, ContainerVerdict.UNKNOWN],
    ]);
  });
});

describe('what a detection says the kernel did', () => {
  const kill = (o: Partial<KernelKill>): KernelKill => ({ cls: 'setns_host', arm: 1, err: 0, ...o });
  const userKill = { outcome: 'KILLED', path: 'kernel' } as const;
  const cls = ['setns_host'] as const;

  it("the kernel's outcome, path KERNEL", () => {
    expect(fromKernel(userKill, kill({ outcome: 'killed' }), cls)).toEqual({ outcome: 'KILLED', path: 'kernel' });
    expect(fromKernel({ outcome: 'WOULD_KILL', path: 'kernel', reason: 'dry-run' }, kill({ outcome: 'would_kill' }), cls)).toEqual({
      outcome: 'WOULD_KILL',
      path: 'kernel',
      reason: 'dry-run',
    });
    expect(fromKernel(userKill, kill({ outcome: 'denied' }), cls)).toMatchObject({ outcome: 'DENIED', path: 'kernel' });
    expect(fromKernel(userKill, kill({ outcome: 'spared', reason: 'allowlisted' }), cls)).toEqual({
      outcome: 'SPARED',
      path: 'kernel',
      reason: "the container's image or creator is allowlisted",
    });
  });

  it('user space acts where the kernel could not, and says why', () => {
    expect(fromKernel(userKill, kill({ outcome: 'failed', reason: 'no_helper' }), cls)).toEqual({
      outcome: 'KILLED',
      path: 'user',
      reason: 'no bpf_send_signal on this kernel: killed from user space',
    });
    expect(fromKernel(userKill, kill({ outcome: 'spared', reason: 'not_container' }), cls)).toMatchObject({
      outcome: 'KILLED',
      path: 'user',
      reason: 'the kernel did not know it as a container (not named yet, or no cgroup of its own): killed from user space',
    });
    expect(fromKernel(userKill, kill({ outcome: 'failed', reason: 'send_error', err: -16 }), cls)).toMatchObject({
      path: 'user',
      reason: "the kernel's signal failed (errno 16): killed from user space",
    });
    // No decision in the record (a door the kernel does not decide: process_vm_writev), or another class's.
    expect(fromKernel(userKill, undefined, cls)).toMatchObject({ outcome: 'KILLED', path: 'user', reason: /not decided in the kernel/ });
    expect(fromKernel(userKill, kill({ cls: 'bpf', outcome: 'killed' }), cls)).toMatchObject({ path: 'user' });
    // User space spares (not in a container): so does the fallback.
    expect(fromKernel({ outcome: 'SPARED', path: 'kernel', reason: 'the actor is not in a container' }, undefined, cls)).toMatchObject({
      outcome: 'SPARED',
      path: 'user',
    });
    expect(fromKernel({}, kill({ outcome: 'killed' }), cls)).toEqual({});
  });

  it('the stage kills from user space only when the kernel did not, and counts per rule and path', () => {
    const kills: number[] = [];
    const c = new Containment({
      policy: { ...DEFAULT_POLICY, rules: { 'escape.setns-host': { enabled: true, action: 'kill' } } },
      selfPid: 1,
      logger: log,
      kill: (pid) => (kills.push(pid), pid === 4243 ? -3 : 0),
    });
    const f = (tgid: number): Finding => ({
      ruleId: 'escape.setns-host',
      severity: 'CRITICAL',
      message: 'm',
      container: {} as ContainerFacts,
      actor: { tgid, ppid: 4000, startNs: 1n, exe: '/bin/nsenter' } as unknown as Finding['actor'],
    });
    expect(c.apply(f(4242), undefined, kill({ outcome: 'killed' }))).toEqual({ outcome: 'KILLED', path: 'kernel' });
    expect(kills).toEqual([]);
    expect(c.apply(f(4242), undefined, kill({ outcome: 'spared', reason: 'not_container' }))).toMatchObject({
      outcome: 'KILLED',
      path: 'user',
    });
    expect(c.apply(f(4243), undefined, kill({ outcome: 'failed', reason: 'no_helper' }))).toEqual({
      outcome: 'KILL_FAILED',
      path: 'user',
      reason: 'no bpf_send_signal on this kernel; from user space: ESRCH: the process had already exited',
    });
    expect(kills).toEqual([4242, 4243]);
    expect(Object.fromEntries(c.byRule)).toEqual({
      'escape.setns-host.killed.kernel': 1,
      'escape.setns-host.killed.user': 1,
      'escape.setns-host.kill_failed.user': 1,
    });
  });
});
