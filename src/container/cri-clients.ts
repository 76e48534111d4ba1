import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * Who is connected to a runtime's API socket now, from kernel objects: the connections the
 * daemon accepted on that socket (their peer socket inodes, from the kernel's sock_diag as
 * `ss -x` prints them) and the processes whose file tables hold those peer sockets (from
 * /proc/<pid>/fd). Names and paths a client could choose decide nothing; its exe link is
 * the kernel's.
 */
export interface CriClientProcess {
  pid: number;
  /** /proc/<pid>/exe, as the kernel resolves it. */
  exe: string;
  comm: string;
  /** It runs in the host's mount namespace (else in a container, or a namespace of its own). */
  hostMnt: boolean;
}

export interface CriClientIo {
  /** `ss -xnH src <socket>` output, or undefined when ss cannot run. */
  ss(socket: string): string | undefined;
  pids(): number[];
  fdLinks(pid: number): string[];
  exe(pid: number): string | undefined;
  comm(pid: number): string | undefined;
  mntNs(pid: number): string | undefined;
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

export const criClientProcIo: CriClientIo = {
  ss: (socket) =>
    safe(() =>
      execFileSync('ss', ['-xnH', 'src', socket], {
        encoding: 'utf8',
        timeout: 2000,
        maxBuffer: 4 << 20,
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    ),
  pids: () =>
    safe(() =>
      readdirSync('/proc')
        .filter((n) => /^\d+$/.test(n))
        .map(Number),
    ) ?? [],
  fdLinks: (pid) => {
    const out: string[] = [];
    for (const fd of safe(() => readdirSync(`/proc/${pid}/fd`)) ?? []) {
      const l = safe(() => readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (l) out.push(l);
    }
    return out;
  },
  exe: (pid) => safe(() => readlinkSync(`/proc/${pid}/exe`)),
  comm: (pid) => safe(() => readFileSync(`/proc/${pid}/comm`, 'utf8').trim()),
  mntNs: (pid) => safe(() => readlinkSync(`/proc/${pid}/ns/mnt`)),
};

/**
 * Peer socket inodes of the connected lines of `ss -xnH src <socket>`: the last column of each
 * line is the peer's inode whatever the local path holds (spaces included).
 */
export function parseSsPeers(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || f[0] !== 'u_str' || f[1] !== 'ESTAB') continue;
    const peer = f[f.length - 1];
    if (/^\d+$/.test(peer) && peer !== '0') out.push(peer);
  }
  return out;
}

/**
 * Who held which peer socket last time (inode → pid): a long-lived client (the kubelet) is
 * checked in its own fd table only, and the whole of /proc is read only for new connections.
 */
export type HolderCache = Map<string, number>;

/** The processes holding a connection to `socket` (the daemon's own pids excluded); undefined when ss cannot tell. */
export function criClients(
  socket: string,
  daemonPids: ReadonlySet<number>,
  hostMnt: string | undefined,
  io: CriClientIo = criClientProcIo,
  cache: HolderCache = new Map(),
): CriClientProcess[] | undefined {
  const text = io.ss(socket);
  if (text === undefined) return undefined;
  const wanted = new Set(parseSsPeers(text).map((ino) => `socket:[${ino}]`));
  const holders = new Set<number>();
  // Known holders first: one fd table each.
  for (const link of [...wanted]) {
    const pid = cache.get(link);
    if (pid === undefined || daemonPids.has(pid)) continue;
    const links = io.fdLinks(pid);
    if (!links.includes(link)) continue;
    holders.add(pid);
    for (const l of links) wanted.delete(l);
  }
  if (wanted.size) {
    for (const pid of io.pids()) {
      if (daemonPids.has(pid) || holders.has(pid)) continue;
      const held = io.fdLinks(pid).filter((l) => wanted.has(l));
      if (!held.length) continue;
      holders.add(pid);
      for (const l of held) cache.set(l, pid);
    }
  }
  if (cache.size > 4096) cache.clear();
  return [...holders]
    .sort((a, b) => a - b)
    .map((pid) => ({ pid, exe: io.exe(pid) ?? '', comm: io.comm(pid) ?? '', hostMnt: !!hostMnt && io.mntNs(pid) === hostMnt }));
}
