import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acquireCrunHybridFix, releaseCrunHybridFix } from './runtime-cgroup';
import { ANY_CODE, deleteSync, run, runToFile, type CommandResult } from './runtime-exec';
import { processRef } from './runtime-proc';
import type { ContainerSpec, Driver, DriverStart, Started } from './runtime-types';

/** Capability names by bit number (capability.h). */
const CAP_NAMES = (
  'CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE ' +
  'NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT ' +
  'SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE ' +
  'AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ ' +
  'PERFMON BPF CHECKPOINT_RESTORE'
).split(' ');

/** Capabilities in our bounding set ('CAP_…'): on this machine every one but CAP_SYS_RESOURCE. */
export function boundingCapabilities(): string[] {
  const hex = /CapBnd:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  const bnd = BigInt(`0x${hex}`);
  return CAP_NAMES.filter((_, i) => (bnd >> BigInt(i)) & 1n).map((n) => `CAP_${n}`);
}

// The OCI config types, only as far as the lab edits them.
interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}
interface OciConfig {
  process: {
    terminal: boolean;
    user: { uid: number; gid: number };
    args: string[];
    capabilities?: Record<string, string[]>;
    noNewPrivileges?: boolean;
  };
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts: OciMount[];
  annotations?: Record<string, string>;
  linux: {
    namespaces: { type: string; path?: string }[];
    maskedPaths?: string[];
    readonlyPaths?: string[];
    seccomp?: unknown;
    resources?: { devices?: unknown[] };
  };
}

/** `runc spec` (or `crun spec`): the runtime's own default config, edited per container by ociConfig(). */
export async function specTemplate(dir: string, tool: 'runc' | 'crun'): Promise<string> {
  mkdirSync(dir, { recursive: true });
  await run([tool, 'spec'], { cwd: dir, timeoutMs: 10_000 });
  return join(dir, 'config.json');
}

/** The bundle config for spec. Never drops the mount namespace: runc would then mount on the host. */
export function ociConfig(template: string, spec: ContainerSpec, name: string, rootfs: string): OciConfig {
  const c = JSON.parse(readFileSync(template, 'utf8')) as OciConfig;
  c.process.terminal = false;
  c.process.args = spec.args;
  c.process.user = { uid: spec.user ?? 0, gid: spec.user ?? 0 };
  c.root = { path: rootfs, readonly: false };
  c.hostname = name.slice(0, 63);
  const shared = new Set([spec.hostPid && 'pid', spec.hostNet && 'network', spec.hostCgroupns && 'cgroup']);
  c.linux.namespaces = c.linux.namespaces.filter((n) => !shared.has(n.type));
  for (const m of spec.mounts ?? []) {
    c.mounts.push({ destination: m.destination, type: 'bind', source: m.source, options: ['rbind', m.readonly ? 'ro' : 'rw'] });
  }
  if (spec.annotations) c.annotations = { ...spec.annotations };
  if (spec.privileged) {
    const caps = boundingCapabilities();
    c.process.capabilities = { bounding: caps, effective: caps, permitted: caps };
    c.process.noNewPrivileges = false;
    delete c.linux.maskedPaths;
    delete c.linux.readonlyPaths;
    delete c.linux.seccomp;
    c.linux.resources = { ...c.linux.resources, devices: [{ allow: true, access: 'rwm' }] };
    for (const m of c.mounts) if (m.destination.startsWith('/sys')) m.options = m.options?.filter((o) => o !== 'ro');
  }
  return c;
}

/** runc and crun: one bundle per container over the lab's shared rootfs, state in /run/<tool>. */
export class OciDriver implements Driver {
  readonly cgroupParents: readonly string[] = [];
  private readonly holders = new Map<string, object>(); // crun: one hybrid-fix hold per bundle
  private bundles = 0;

  constructor(
    private readonly tool: 'runc' | 'crun',
    private readonly dir: string,
    private readonly template: string,
    private readonly rootfs: string,
  ) {}

  async start(spec: ContainerSpec, name: string): Promise<DriverStart> {
    if (spec.restart) throw new Error(`${this.tool} has no restart policy`);
    // Never the bundle of a namesake: its config.json is what a sensor reads.
    const bundle = join(this.dir, `${name}.${++this.bundles}`);
    mkdirSync(bundle, { recursive: true });
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(ociConfig(this.template, spec, name, this.rootfs), null, 1));
    const timeoutMs = spec.timeoutMs ?? 60_000;
    const started: Started = { runtime: this.tool, id: name, name, bundle };
    this.hold(bundle);

    if (spec.detach === false) {
      try {
        const r = await run([this.tool, 'run', '--bundle', bundle, name], { timeoutMs, okCodes: ANY_CODE });
        return { started: { ...started, exitCode: r.code, stdout: r.stdout }, watch: [] };
      } finally {
        this.release(bundle);
      }
    }
    // create then start, as shims do: `runc init` waits on the exec fifo between the two.
    const pidFile = join(bundle, 'init.pid');
    try {
      // A failed create cleans up after itself (and must not touch a namesake).
      await runToFile([this.tool, 'create', '--bundle', bundle, '--pid-file', pidFile, name], join(bundle, 'stdio.log'), { timeoutMs });
    } catch (e) {
      this.release(bundle);
      throw e;
    }
    try {
      await run([this.tool, 'start', name], { timeoutMs });
      started.initPid = Number(readFileSync(pidFile, 'utf8').trim());
    } catch (e) {
      this.stopSync(started);
      throw e;
    }
    const ref = processRef(started.initPid);
    return { started, watch: ref ? [ref] : [] };
  }

  exec(c: Started, args: string[]): Promise<CommandResult> {
    return run([this.tool, 'exec', c.id, ...args], { okCodes: ANY_CODE });
  }

  stopSync(c: Started): void {
    try {
      deleteSync([this.tool, 'delete', '--force', c.id]);
    } finally {
      if (c.bundle) this.release(c.bundle);
    }
  }

  cli(): Promise<string[]> {
    return Promise.resolve([this.tool]);
  }

  cgroupNames(c: Started): string[] {
    return [c.id];
  }

  daemons() {
    return [];
  }

  closeSync(): string[] {
    return [];
  }

  private hold(bundle: string): void {
    if (this.tool !== 'crun') return;
    const h = {};
    this.holders.set(bundle, h);
    acquireCrunHybridFix(h);
  }

  /** Drops the container's hold on the crun fix; undoing it may have to wait for close(). */
  private release(bundle: string): void {
    const h = this.holders.get(bundle);
    if (!h) return;
    this.holders.delete(bundle);
    try {
      releaseCrunHybridFix(h);
    } catch {
      /* close() retries and reports */
    }
  }
}
