import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  degradations,
  DEPENDENCIES,
  featureNotes,
  hookName,
  refusal,
  type KernelFeatures,
  type ProgramInfo,
} from '../../src/kernel/features';
import { RULE_BY_ID } from '../../src/detect/catalog';

const ALL: KernelFeatures = { btf: true, ringbuf: true, tracing: true, taskBtf: true, sendSignal: true, lsm: false };
const SYSCALLS = [
  'setns',
  'unshare',
  'mount',
  'chroot',
  'pivot_root',
  'ptrace',
  'open',
  'openat',
  'connect',
  'init_module',
  'finit_module',
  'bpf',
  'io_uring_setup',
  'openat2',
  'open_by_handle_at',
  'fsmount',
  'open_tree',
  'process_vm_writev',
  'pidfd_getfd',
];
const progs = (missing: string[] = []): ProgramInfo[] => [
  { name: 'cw_fork', section: 'tp_btf/sched_process_fork', attached: true },
  { name: 'cw_signal', section: 'tp_btf/signal_generate', attached: true },
  { name: 'cw_uring_req', section: 'tracepoint/io_uring/io_uring_submit_req', attached: !missing.includes('io_uring_submit_req') },
  { name: 'cw_uring_sqe', section: 'tracepoint/io_uring/io_uring_submit_sqe', attached: false },
  ...SYSCALLS.flatMap((s) =>
    ['enter', 'exit'].map((k) => ({ name: `cw_${k}_${s}`, section: `tracepoint/syscalls/sys_${k}_${s}`, attached: !missing.includes(s) })),
  ),
];

describe('kernel features', () => {
  it('refuses, in one line naming the kernel, without BTF, ring buffer or tp_btf', () => {
    expect(refusal(ALL, '6.1.0')).toBeUndefined();
    expect(refusal({ ...ALL, btf: false }, '5.4.0')).toMatch(/^the kernel has no BTF .*this kernel: 5\.4\.0.*CONFIG_DEBUG_INFO_BTF/);
    expect(refusal({ ...ALL, ringbuf: false }, '5.4.0')).toMatch(/no BPF ring buffer .*5\.8 or later/);
    expect(refusal({ ...ALL, tracing: false })).toMatch(/tp_btf/);
    for (const r of [refusal({ ...ALL, btf: false }), refusal({ ...ALL, ringbuf: false })]) expect(r).not.toContain('\n');
  });

  it('notes what is slower or missing without refusing', () => {
    expect(featureNotes({ ...ALL, lsm: true })).toEqual([]);
    expect(featureNotes({ ...ALL, taskBtf: false }).join('\n')).toMatch(/probe reads/);
    expect(featureNotes({ ...ALL, lsm: true, sendSignal: false }).join('\n')).toMatch(/killed from user space through a pidfd/);
  });

  it('names each rule lost with a missing tracepoint, and only those', () => {
    expect(degradations(progs())).toEqual([]);
    const mod = degradations(progs(['init_module', 'finit_module']));
    expect(mod.map((d) => d.rule)).toEqual(['escape.module-load']);
    expect(mod[0].why).toMatch(/sys_enter_init_module or sys_enter_finit_module.*kernel module loads/);
    expect(degradations(progs(['connect'])).map((d) => d.rule)).toEqual(['discovery.runtime-socket', 'deploy.from-container']);
    // arm64 has no open(2): openat alone serves the rule.
    expect(degradations(progs(['open']))).toEqual([]);
    expect(degradations(progs(['open', 'openat', 'openat2'])).map((d) => d.rule)).toEqual([
      'escape.kernel-control-write',
      'escape.kernel-control-write',
    ]);
  });

  it('takes either name of the io_uring submission tracepoint', () => {
    expect(degradations(progs()).map((d) => d.rule)).toEqual([]);
    expect(degradations(progs(['io_uring_submit_req'])).map((d) => d.rule)).toEqual(['evasion.io-uring-ops']);
  });

  it('marks container creation as required: without root-change tracepoints the sensor cannot run', () => {
    const d = degradations(progs(['pivot_root', 'chroot']));
    expect(d.some((x) => x.required)).toBe(true);
    expect(d.map((x) => x.rule)).toContain('escape.chroot-host');
    expect(degradations(progs(['chroot'])).some((x) => x.required)).toBe(false);
  });

  it('every rule it names is in the catalogue', () => {
    for (const d of DEPENDENCIES) for (const r of d.rules) expect(RULE_BY_ID.has(r), r).toBe(true);
  });

  it('names in its dependencies only hooks that the built BPF object has a program for', () => {
    // The sections of the object `make` builds: a hook named wrongly here would report a
    // detection as degraded on every kernel (as sys_enter_fsmount once did).
    const obj = join(__dirname, '../../bpf/.output/ctrwatch.bpf.o');
    const sections = execFileSync('readelf', ['-W', '-S', obj])
      .toString()
      .split('\n')
      .map((l) => /\]\s+(\S+)\s+PROGBITS/.exec(l)?.[1])
      .filter((s): s is string => Boolean(s && /^(tp_btf|raw_tp|tracepoint)\//.test(s)));
    expect(sections.length).toBeGreaterThan(40);
    const have = new Set(sections.map(hookName));
    for (const d of DEPENDENCIES) for (const h of d.hooks) expect(have, `${h} (${d.what})`).toContain(h);
  });

  it('names hooks by their tracepoint', () => {
    expect(hookName('tp_btf/sched_process_fork')).toBe('sched_process_fork');
    expect(hookName('tracepoint/syscalls/sys_enter_setns')).toBe('sys_enter_setns');
    expect(hookName('raw_tp/sched_switch')).toBe('sched_switch');
    expect(hookName('tracepoint/io_uring/io_uring_submit_req')).toBe('io_uring_submit_req');
  });
});

describe('a failed load, in one line', () => {
  it('names the program the verifier rejected, not a permission problem', async () => {
    const { explainStartError } = await import('../../src/doctor');
    const { SensorStartError } = await import('../../src/kernel/sensor');
    const err = new SensorStartError("BPF load failed: Permission denied\n  libbpf: prog 'cw_cgroup_mkdir': failed to load: -13", 'load', {
      errno: 13,
    });
    const line = explainStartError(err);
    expect(line).toMatch(/verifier rejected program cw_cgroup_mkdir/);
    expect(line).not.toMatch(/run as root/);
    const perm = explainStartError(new SensorStartError('BPF load failed: Operation not permitted', 'load', { errno: 1 }));
    expect(perm).toMatch(/run as root/);
  });

  it('says the verifier was interrupted, not that it rejected the program, on EAGAIN', async () => {
    const { explainStartError } = await import('../../src/doctor');
    const { SensorStartError } = await import('../../src/kernel/sensor');
    const err = new SensorStartError(
      "BPF load failed: Resource temporarily unavailable\n  libbpf: prog 'cw_fork': failed to load: -11",
      'load',
      {
        errno: 11,
      },
    );
    const line = explainStartError(err);
    expect(line).toMatch(/interrupted by signals while checking program cw_fork/);
    expect(line).not.toMatch(/rejected/);
  });
});
