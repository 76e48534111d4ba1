import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { featureNotes, refusal } from './kernel/features';
import type { KernelFeatures } from './native';
import { readHostFacts } from './host';
import { SensorStartError, KernelSensor } from './kernel/sensor';
import { tracefsPath, withTracefs } from './kernel/tracefs';
import { loadBinding } from './native';
import type { Logger } from 'pino';

/** One line of `ctrwatch doctor`: what was checked, and what to do when it failed. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
  /** ok, but something is lost or slower on this node (a degraded rule). */
  warn?: boolean;
}

const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

export function capEffective(status = readFileSync('/proc/self/status', 'utf8')): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

const has = (caps: bigint, bit: bigint) => ((caps >> bit) & 1n) === 1n;

export function checkPrivileges(caps = capEffective()): Check {
  const enough = has(caps, CAP_SYS_ADMIN) || (has(caps, CAP_BPF) && has(caps, CAP_PERFMON));
  return enough
    ? { name: 'privileges', ok: true, detail: `CapEff ${caps.toString(16)}` }
    : {
        name: 'privileges',
        ok: false,
        detail: `CapEff ${caps.toString(16)} lacks CAP_BPF+CAP_PERFMON and CAP_SYS_ADMIN`,
        fix: 'run as root (or grant CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)',
      };
}

export function checkBtf(path = '/sys/kernel/btf/vmlinux'): Check {
  return existsSync(path)
    ? { name: 'btf', ok: true, detail: `${path} present` }
    : {
        name: 'btf',
        ok: false,
        detail: `${path} missing`,
        fix: 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y (every major distribution since 2020 ships one)',
      };
}

function checkAddon(): Check {
  try {
    loadBinding();
    return { name: 'addon', ok: true, detail: 'build/Release/ctrwatch.node loads' };
  } catch (err) {
    return { name: 'addon', ok: false, detail: (err as Error).message.split('\n')[0], fix: 'build it: make build' };
  }
}

function checkTracefs(): Check {
  try {
    const t = withTracefs();
    const own = t.path !== tracefsPath();
    t.release();
    return {
      name: 'tracefs',
      ok: true,
      detail: own
        ? 'the sensor mounts a private tracefs for the attach and unmounts it after'
        : `using the node's tracefs at ${t.path} (no privilege to mount one)`,
    };
  } catch (err) {
    return { name: 'tracefs', ok: false, detail: (err as Error).message, fix: 'mount it: mount -t tracefs nodev /sys/kernel/tracing' };
  }
}

function checkHost(): Check {
  try {
    const h = readHostFacts();
    const where = h.cgroup.mode === 'v2' ? 'cgroup2' : `cgroup v1 ${h.cgroup.controller} (hierarchy ${h.cgroup.hierarchy})`;
    if (!h.cgroup.mount) {
      return { name: 'cgroups', ok: false, detail: `${where} is not mounted`, fix: 'mount the cgroup filesystem at /sys/fs/cgroup' };
    }
    return {
      name: 'cgroups',
      ok: true,
      detail: `tracking ${where} at ${h.cgroup.mount}; host namespaces from ${h.nsSource === 'pid1' ? 'PID 1' : 'the sensor (PID 1 unreadable)'}`,
    };
  } catch (err) {
    return { name: 'cgroups', ok: false, detail: (err as Error).message, fix: 'mount /proc and /sys/fs/cgroup' };
  }
}

/** What a failed load or attach means, in one line. */
export function explainStartError(err: unknown): string {
  const e = err as SensorStartError & { cause?: { errno?: number } };
  const errno = e.cause?.errno;
  const base = e.message.split('\n')[0];
  // The verifier's refusal comes back as EACCES or EINVAL with libbpf naming the program.
  const prog = /prog '(\w+)': (?:BPF program load failed|failed to load)/.exec(e.message)?.[1];
  // The verifier gives up with EAGAIN when a signal is pending, and libbpf retries only a few
  // times: not a refusal of the program.
  if (e.stage === 'load' && errno === 11)
    return `${base}: the kernel's verifier was interrupted by signals while checking ${prog ? `program ${prog}` : 'a program'} (EAGAIN, after libbpf's retries): something sends the sensor signals at a high rate (a profiler's SIGPROF, as with node --cpu-prof): stop that and start it again`;
  if (e.stage === 'load' && prog)
    return `${base}: the kernel's verifier rejected program ${prog} (CTRWATCH_LOG=debug prints its log; please report it with \`uname -r\`)`;
  if (errno === 1 || errno === 13)
    return `${base}: the kernel refused (permission): run as root; check kernel.unprivileged_bpf_disabled, lockdown and seccomp of the container the sensor runs in`;
  if (errno === 2) return `${base}: a tracepoint or kernel type is missing on this kernel`;
  if (errno === 22 && e.stage === 'load') return `${base}: the verifier rejected a program (run with CTRWATCH_LOG=debug for libbpf's log)`;
  return base;
}

/** The kernel's BPF features, probed by loading (no version numbers). */
export function checkKernel(features: KernelFeatures, rel = release()): Check[] {
  const no = refusal(features, rel);
  if (no) return [{ name: 'kernel', ok: false, detail: no, fix: 'run ctrwatch on a newer kernel' }];
  const have = Object.entries(features)
    .filter(([, v]) => v)
    .map(([k]) => k);
  const out: Check[] = [{ name: 'kernel', ok: true, detail: `${rel}: ${have.join(', ')}` }];
  for (const n of featureNotes(features)) out.push({ name: 'kernel', ok: true, warn: true, detail: n });
  out.push({ name: 'containment', ok: true, ...containmentPath(features) });
  return out;
}

/** Where rules armed with `action: kill` act on this kernel. */
function containmentPath(f: KernelFeatures): { detail: string; warn?: boolean } {
  if (f.lsm) return { detail: 'kernel rules deny with EPERM where BPF-LSM has a hook, else kill at syscall exit' };
  if (f.sendSignal) return { detail: 'kernel rules kill at syscall exit (bpf_send_signal), before the call returns to user space' };
  return { detail: 'kernel rules kill from user space through a pidfd (no bpf_send_signal): after the call returned', warn: true };
}

function checkAttach(logger: Logger): Check[] {
  const s = new KernelSensor({ logger, ringBytes: 4096 }, () => {});
  try {
    s.start();
    const hooks = s.hooks();
    const out: Check[] = [{ name: 'bpf', ok: true, detail: `${hooks.length} programs load and attach; ring buffer works` }];
    // One line per rule this kernel cannot serve, saying why.
    for (const d of s.degraded()) out.push({ name: 'degraded', ok: true, warn: true, detail: `${d.rule}: ${d.why}` });
    return out;
  } catch (err) {
    return [{ name: 'bpf', ok: false, detail: explainStartError(err), fix: 'see the line above' }];
  } finally {
    s.close();
  }
}

/** Every check, in order; later ones are skipped when an earlier one makes them pointless. */
export function runChecks(logger: Logger): Check[] {
  const out = [checkPrivileges(), checkBtf(), checkAddon(), checkHost()];
  if (out.every((c) => c.ok)) out.push(...checkKernel(loadBinding().probe()));
  if (out.every((c) => c.ok)) out.push(checkTracefs());
  if (out.every((c) => c.ok)) out.push(...checkAttach(logger));
  return out;
}

export function formatCheck(c: Check): string {
  return `${c.ok ? (c.warn ? 'warn' : 'ok  ') : 'FAIL'}  ${c.name.padEnd(10)} ${c.detail}${c.ok || !c.fix ? '' : ` — ${c.fix}`}`;
}
