import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

/**
 * The node's container-runtime API sockets, known by the identity of their
 * file (device, inode) rather than by a path: a client reaching one through a
 * symlink, a bind mount or a copy of the name under another directory still
 * connects to the same inode, which the kernel reports from the socket object
 * (bpf/net.bpf.h). Found two ways: the well-known paths, and the listening unix
 * sockets that runtime daemons running in the host's mount namespace hold
 * open (so a daemon started with -H unix:///anywhere/else is found too).
 */

/** Well-known runtime and kubelet API socket paths. */
export const KNOWN_SOCKET_PATHS = [
  '/run/docker.sock',
  '/var/run/docker.sock',
  '/run/containerd/containerd.sock',
  '/run/containerd/containerd.sock.ttrpc',
  '/run/crio/crio.sock',
  '/var/run/crio/crio.sock',
  '/run/podman/podman.sock',
  '/run/cri-dockerd.sock',
  '/run/dockershim.sock',
  '/run/buildkit/buildkitd.sock',
  '/run/k3s/containerd/containerd.sock',
  '/var/lib/kubelet/pod-resources/kubelet.sock',
  '/var/lib/kubelet/device-plugins/kubelet.sock',
];

/** Daemons whose listening unix sockets are runtime APIs (comm, cut to 15 bytes by the kernel). */
export const RUNTIME_DAEMONS = new Set([
  'dockerd',
  'containerd',
  'crio',
  'podman',
  'kubelet',
  'buildkitd',
  'cri-dockerd',
  'k3s',
  'k3s-server',
]);

export interface RuntimeSocket {
  /** Device in the kernel's encoding (major << 20 | minor), as bpf/net.bpf.h reports s_dev. */
  dev: number;
  ino: bigint;
  path: string;
  /** Who: 'path' for a well-known path, else the daemon's comm. */
  source: string;
}

/** A stat st_dev (glibc encoding) in the kernel's internal encoding. */
export function kernelDev(stDev: bigint): number {
  const major = Number(((stDev >> 8n) & 0xfffn) | ((stDev >> 32n) & ~0xfffn));
  const minor = Number((stDev & 0xffn) | ((stDev >> 12n) & ~0xffn));
  return ((major << 20) | minor) >>> 0;
}

const SO_ACCEPTCON = 0x10000;

/**
 * /proc/PID/net/unix: sockfs inode -> bound path, for listening sockets with a
 * filesystem path (abstract names start with '@' and have no file).
 */
export function parseNetUnix(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    // Num RefCount Protocol Flags Type St Inode Path
    const f = lines[i].trim().split(/\s+/);
    if (f.length < 8) continue;
    const flags = Number.parseInt(f[3], 16);
    const path = f.slice(7).join(' ');
    if (!(flags & SO_ACCEPTCON) || !path.startsWith('/')) continue;
    out.set(f[6], path);
  }
  return out;
}

export interface SocketScanIo {
  stat(path: string): { dev: bigint; ino: bigint; isSocket: boolean } | undefined;
  pids(): number[];
  comm(pid: number): string | undefined;
  mntNs(pid: number): string | undefined;
  fdLinks(pid: number): string[];
  netUnix(pid: number): string | undefined;
}

const MAX_READ = 4 << 20;

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

export const procIo: SocketScanIo = {
  stat: (p) =>
    safe(() => {
      const s = statSync(p, { bigint: true });
      return { dev: s.dev, ino: s.ino, isSocket: s.isSocket() };
    }),
  pids: () => (safe(() => readdirSync('/proc')) ?? []).filter((n) => /^\d+$/.test(n)).map(Number),
  comm: (pid) => safe(() => readFileSync(`/proc/${pid}/comm`, 'utf8').trim()),
  mntNs: (pid) => safe(() => readlinkSync(`/proc/${pid}/ns/mnt`)),
  fdLinks: (pid) => {
    const dir = `/proc/${pid}/fd`;
    const out: string[] = [];
    for (const fd of safe(() => readdirSync(dir)) ?? []) {
      const l = safe(() => readlinkSync(`${dir}/${fd}`));
      if (l) out.push(l);
    }
    return out;
  },
  netUnix: (pid) =>
    safe(() => {
      const b = readFileSync(`/proc/${pid}/net/unix`);
      return b.subarray(0, MAX_READ).toString('utf8');
    }),
};

/**
 * Every runtime socket found now. hostMnt: the host's mount namespace inode
 * (HostFacts), so that a sensor running in a mount namespace of its own still
 * recognises the host's daemons; the sensor's own namespace without it.
 */
export function scanRuntimeSockets(io: SocketScanIo = procIo, hostMntIno?: number, skip?: (pid: number) => boolean): RuntimeSocket[] {
  const out = new Map<string, RuntimeSocket>();
  const add = (path: string, statPath: string, source: string) => {
    const s = io.stat(statPath);
    if (!s || !s.isSocket) return;
    const dev = kernelDev(s.dev);
    const key = `${dev}:${s.ino}`;
    if (!out.has(key)) out.set(key, { dev, ino: s.ino, path, source });
  };
  for (const p of KNOWN_SOCKET_PATHS) add(p, p, 'path');
  const hostMnt = hostMntIno !== undefined ? `mnt:[${hostMntIno}]` : io.mntNs(process.pid);
  for (const pid of io.pids()) {
    // A process the sensor knows to live in another mount namespace is no host daemon: it is not
    // read (on a node of many containers, nearly every pid; each read costs a few syscalls).
    if (skip?.(pid)) continue;
    const comm = io.comm(pid);
    if (!comm || !RUNTIME_DAEMONS.has(comm)) continue;
    // A process in a container can call itself dockerd: only the host's daemons count.
    if (!hostMnt || io.mntNs(pid) !== hostMnt) continue;
    const held = new Set(
      io
        .fdLinks(pid)
        .map((l) => /^socket:\[(\d+)\]$/.exec(l)?.[1])
        .filter((x): x is string => !!x),
    );
    if (!held.size) continue;
    const text = io.netUnix(pid);
    if (!text) continue;
    for (const [ino, path] of parseNetUnix(text)) if (held.has(ino)) add(path, `/proc/${pid}/root${path}`, comm);
  }
  return [...out.values()];
}

/**
 * The set the detector asks and the kernel filters on. A miss on a socket not missed before
 * rescans at once, so that a daemon started after the last scan is found the first time a
 * container reaches it. Those rescans are rationed, since a container can make new *.sock sockets
 * as fast as it likes and each scan reads every host process: `burst` of them, refilled one per
 * `rescanMs`, never two within `minGapMs`. A miss left without a scan stays new and tries again
 * at its next connect. A socket missed after a scan is no runtime's then and does not rescan again
 * (a container connecting to its own *.sock again and again): the periodic refresh finds a
 * daemon that takes it later. Every change is pushed to the kernel.
 */
export class RuntimeSockets {
  private byKey = new Map<string, RuntimeSocket>();
  private readonly missed = new Set<string>();
  private lastScan = -Infinity;
  private scans: number;
  private scansAt: number;

  constructor(
    private readonly scan: () => RuntimeSocket[] = () => scanRuntimeSockets(),
    private readonly push: (s: RuntimeSocket[]) => void = () => {},
    private readonly now: () => number = () => Date.now(),
    private readonly rescanMs = 1000,
    private readonly minGapMs = 100,
    private readonly burst = 3,
  ) {
    this.scans = burst;
    this.scansAt = now();
  }

  refresh(): RuntimeSocket[] {
    this.lastScan = this.now();
    const list = this.scan();
    const next = new Map(list.map((s) => [`${s.dev}:${s.ino}`, s]));
    const changed = next.size !== this.byKey.size || [...next.keys()].some((k) => !this.byKey.has(k));
    this.byKey = next;
    if (changed) this.push(list);
    return list;
  }

  /** The runtime socket with this file identity, if any. */
  match(dev: number, ino: bigint): RuntimeSocket | undefined {
    const key = `${dev}:${ino}`;
    const hit = this.byKey.get(key);
    if (hit || this.missed.has(key) || !this.takeScan()) return hit;
    if (this.missed.size >= 4096) this.missed.clear();
    this.missed.add(key);
    this.refresh();
    return this.byKey.get(key);
  }

  /** One rescan for a miss, if the ration has one now. */
  private takeScan(): boolean {
    const now = this.now();
    if (now - this.lastScan < this.minGapMs) return false;
    this.scans = Math.min(this.burst, this.scans + (now - this.scansAt) / this.rescanMs);
    this.scansAt = now;
    if (this.scans < 1) return false;
    this.scans -= 1;
    return true;
  }

  list(): RuntimeSocket[] {
    return [...this.byKey.values()];
  }
}
