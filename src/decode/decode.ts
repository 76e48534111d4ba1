import {
  CHAIN_DEPTH,
  cw_cgroup,
  cw_connect,
  cw_exec,
  cw_exit,
  cw_fork,
  cw_guard,
  cw_hdr,
  cw_kill,
  cw_obj,
  cw_syscall,
  cw_task,
  cw_uring,
  EXEC_ARGS_MAX,
  EXEC_FILENAME_MAX,
  EXEC_FIXED_SIZE,
  GuardWhat,
  KILL_CLASSES,
  KILL_OUTCOMES,
  KILL_REASONS,
  NAME_LEN,
  NS_NAMES,
  ObjFlag,
  RecordType,
  SYSCALL_NAMES,
} from './layout';
import type { KillClass, KillOutcome, KillReason, SyscallName } from './layout';
import type {
  CgroupRecord,
  DecodedBatch,
  DecodeError,
  GuardRecord,
  KernelKill,
  KernelRecord,
  Namespaces,
  ObjectRecord,
  SyscallRecord,
  TaskInfo,
} from './records';

const T = cw_task.fields;
const TASK_AT = cw_fork.fields.task[0]; // the same offset in every record
const MIN_SIZE: Record<number, number> = {
  [RecordType.FORK]: cw_fork.size,
  [RecordType.EXEC]: EXEC_FIXED_SIZE + 8, // the filename's NUL at least, rounded up to 8
  [RecordType.EXIT]: cw_exit.size,
  [RecordType.CGROUP_MKDIR]: cw_cgroup.size,
  [RecordType.CGROUP_RMDIR]: cw_cgroup.size,
  [RecordType.CGROUP_ATTACH]: cw_cgroup.size,
  [RecordType.SYSCALL]: cw_syscall.size,
  [RecordType.OBJECT]: cw_obj.size,
  [RecordType.GUARD]: cw_guard.size,
  [RecordType.CONNECT]: cw_connect.size,
  [RecordType.URING]: cw_uring.size,
};
/** struct cw_kill at `at`; undefined when the record is no containment class (cls 0). */
function killAt(buf: Buffer, at: number): KernelKill | undefined {
  const K = cw_kill.fields;
  const cls = KILL_CLASSES[buf[at + K.cls[0]]];
  if (!cls) return undefined;
  const k: KernelKill = { cls: cls as KillClass, arm: buf[at + K.arm[0]], err: buf.readInt32LE(at + K.err[0]) };
  const outcome = KILL_OUTCOMES[buf[at + K.outcome[0]]];
  const reason = KILL_REASONS[buf[at + K.reason[0]]];
  if (outcome) k.outcome = outcome as KillOutcome;
  if (reason) k.reason = reason as KillReason;
  return k;
}

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;

function ipString(buf: Buffer, at: number, family: number): string {
  if (family === AF_INET) return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(buf.readUInt16BE(at + i).toString(16));
  return parts.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}
const CGROUP_KINDS = {
  [RecordType.CGROUP_MKDIR]: 'cgroup_mkdir',
  [RecordType.CGROUP_RMDIR]: 'cgroup_rmdir',
  [RecordType.CGROUP_ATTACH]: 'cgroup_attach',
} as const;

/**
 * Views over one batch. Records are 8-byte aligned in it (the addon pads
 * them), so fields are read through typed arrays: an order of magnitude
 * cheaper than Buffer's read methods at a few million fields a second.
 */
interface Views {
  buf: Buffer;
  u32: Uint32Array;
  i32: Int32Array;
  u64: BigUint64Array;
}

function views(buf: Buffer): Views {
  // An unaligned Buffer (a slice of someone's pool) is copied once to align it.
  const b = buf.byteOffset % 8 === 0 ? buf : Buffer.from(buf);
  return {
    buf: b,
    u32: new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2),
    i32: new Int32Array(b.buffer, b.byteOffset, b.length >>> 2),
    u64: new BigUint64Array(b.buffer, b.byteOffset, b.length >>> 3),
  };
}

/** V8 keeps a string built by `+=` flat below this length; from it, each `+=` adds a node. */
const FLAT_CONCAT_MAX = 12;

/**
 * Bytes [start, end) as a string: very short ASCII built in JavaScript, longer ASCII as latin1
 * (one char a byte, the same text), anything else as UTF-8. Built char by char, a 13 to 64 byte
 * run was a chain of one 32-byte node a char until something flattened it, and what is only
 * stored never is (the cgroup paths in the cache below, with real containers, most of all).
 */
function str(buf: Buffer, start: number, end: number): string {
  if (end - start > 64) return buf.toString('utf8', start, end);
  for (let i = start; i < end; i++) if (buf[i] >= 0x80) return buf.toString('utf8', start, end);
  if (end - start > FLAT_CONCAT_MAX) return buf.toString('latin1', start, end);
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]);
  return s;
}

/**
 * Recently decoded byte runs (comm, filename, argv): a node runs the same
 * commands again and again, and turning bytes into strings is the decoder's
 * main cost. Keyed by a hash, checked byte for byte; bounded; values frozen.
 */
const CACHE_MAX = 4096;
/**
 * `src` holds the bytes as a one-byte string: a Buffer copy of a few bytes is a slice of an 8 KiB
 * pool slab, and one cached entry kept its whole slab alive (3.4 MiB outside the heap at 10,000
 * containers).
 */
type Cached = { src: string; value: string | readonly string[] };
/**
 * Two generations: when the young one is full it becomes the old one, and a hit there moves
 * back to the young one. What a node runs all the time stays shared however many one-off
 * command lines go by (a plain clear made a new copy of each after every 4,096 new ones).
 */
let cache = new Map<number, Cached>();
let oldCache = new Map<number, Cached>();

/**
 * The length and the ends of a run, not all of it: a hit is checked byte for byte anyway, so a
 * long argv that differs only in its middle costs a cache slot, never a wrong string.
 */
function hashBytes(buf: Buffer, start: number, end: number, salt: number): number {
  let h = Math.imul(0x811c9dc5 ^ salt ^ (end - start), 0x01000193);
  const head = Math.min(end, start + 48);
  for (let i = start; i < head; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  for (let i = Math.max(head, end - 16); i < end; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  return h >>> 0;
}

/** From this length a native slice and string compare beat a byte loop (an argv, a long path). */
const NATIVE_COMPARE = 48;

function sameBytes(hit: Cached | undefined, buf: Buffer, start: number, end: number): boolean {
  if (!hit || hit.src.length !== end - start) return false;
  const src = hit.src;
  const n = end - start;
  if (n >= NATIVE_COMPARE) return buf.toString('latin1', start, end) === src;
  for (let i = 0; i < n; i++) if (src.charCodeAt(i) !== buf[start + i]) return false;
  return true;
}

function remember(h: number, entry: Cached): void {
  if (cache.size >= CACHE_MAX) {
    oldCache = cache;
    cache = new Map();
  }
  cache.set(h, entry);
}

function cached<T extends string | readonly string[]>(buf: Buffer, start: number, end: number, salt: number, make: () => T): T {
  const h = hashBytes(buf, start, end, salt);
  const hit = cache.get(h);
  if (sameBytes(hit, buf, start, end)) return hit!.value as T;
  const old = oldCache.get(h);
  if (sameBytes(old, buf, start, end)) {
    remember(h, old!);
    return old!.value as T;
  }
  const value = make();
  // ASCII text decodes to its own bytes' latin1: one string then serves as both.
  const src = buf.toString('latin1', start, end);
  remember(h, { src: src === value ? value : src, value });
  return value;
}

/** A NUL-terminated string in a fixed-size field. */
function cstr(buf: Buffer, at: number, len: number): string {
  let end = at;
  const max = at + len;
  while (end < max && buf[end] !== 0) end++;
  return end - at <= 2 ? str(buf, at, end) : cached(buf, at, end, 1, () => str(buf, at, end));
}

/**
 * Namespace sets are shared: every process of a container, and every host
 * process, has the same eight inodes. One frozen object per distinct set
 * (looked up by mount namespace) keeps the process table small: inode
 * numbers above 2^31 are boxed heap numbers, eight of them per copy.
 */
const NS_MAX = 16384;
/** By mount namespace: the one set seen with it (the common case: no array), or the several. */
const nsSets = new Map<number, Namespaces | Namespaces[]>();
let nsCount = 0;

function sameSet(n: Namespaces, u32: Uint32Array, w: number): boolean {
  return (
    n.pid === u32[w + 1] &&
    n.net === u32[w + 2] &&
    n.uts === u32[w + 3] &&
    n.ipc === u32[w + 4] &&
    n.cgroup === u32[w + 5] &&
    n.user === u32[w + 6] &&
    n.time === u32[w + 7]
  );
}

function namespaces(u32: Uint32Array, w: number): Namespaces {
  const mnt = u32[w];
  const have = nsSets.get(mnt);
  if (have) {
    if (!Array.isArray(have)) {
      if (sameSet(have, u32, w)) return have;
    } else for (const n of have) if (sameSet(n, u32, w)) return n;
  }
  const n: Namespaces = Object.freeze({
    mnt,
    pid: u32[w + 1],
    net: u32[w + 2],
    uts: u32[w + 3],
    ipc: u32[w + 4],
    cgroup: u32[w + 5],
    user: u32[w + 6],
    time: u32[w + 7],
  });
  if (nsCount >= NS_MAX) {
    nsSets.clear();
    nsCount = 0;
  }
  const again = nsSets.get(mnt);
  if (again === undefined) nsSets.set(mnt, n);
  else if (Array.isArray(again)) again.push(n);
  else nsSets.set(mnt, [again, n]);
  nsCount++;
  return n;
}

function task(v: Views, at: number): TaskInfo {
  const w = at >>> 2;
  const q = at >>> 3;
  const u32 = v.u32;
  return {
    startNs: v.u64[q + (T.start_ns[0] >>> 3)],
    parentStartNs: v.u64[q + (T.parent_start_ns[0] >>> 3)],
    capEffective: v.u64[q + (T.cap_effective[0] >>> 3)],
    cgroupId: v.u64[q + (T.cgroup_id[0] >>> 3)],
    pid: u32[w + (T.pid[0] >>> 2)],
    tgid: u32[w + (T.tgid[0] >>> 2)],
    ppid: u32[w + (T.ppid[0] >>> 2)],
    nspid: u32[w + (T.nspid[0] >>> 2)],
    uid: u32[w + (T.uid[0] >>> 2)],
    euid: u32[w + (T.euid[0] >>> 2)],
    gid: u32[w + (T.gid[0] >>> 2)],
    egid: u32[w + (T.egid[0] >>> 2)],
    ns: namespaces(u32, w + (T.ns[0] >>> 2)),
    flags: u32[w + (T.flags[0] >>> 2)],
    comm: cstr(v.buf, at + T.comm[0], T.comm[1]),
  };
}

/** NUL-separated argv; a trailing partial argument (truncated) is kept. Shared: never mutate. */
function argv(buf: Buffer, at: number, len: number): string[] {
  return cached(buf, at, at + len, 2, () => Object.freeze(splitArgs(buf, at, len))) as string[];
}

function splitArgs(buf: Buffer, at: number, len: number): string[] {
  const out: string[] = [];
  const end = at + len;
  let i = at;
  for (let j = at; j <= end; j++) {
    if (j === end || buf[j] === 0) {
      if (j > i || j < end) out.push(str(buf, i, j));
      i = j + 1;
    }
  }
  return out;
}

function nsMask(mask: number): (typeof NS_NAMES)[number][] {
  return NS_NAMES.filter((_, i) => mask & (1 << i));
}

/** A signed 64-bit seconds field as a number (exact below 2^53). */
function i64(v: Views, at: number): number {
  return v.i32[(at >>> 2) + 1] * 4294967296 + v.u32[at >>> 2];
}

const u32at = (v: Views, at: number) => v.u32[at >>> 2];

function one(v: Views, at: number, type: number, size: number): KernelRecord | string {
  const ktime = v.u64[(at + cw_hdr.fields.ktime[0]) >>> 3];
  const cpu = u32at(v, at + cw_hdr.fields.cpu[0]);
  const t = task(v, at + TASK_AT);
  switch (type) {
    case RecordType.FORK:
      return {
        kind: 'fork',
        ktime,
        cpu,
        task: t,
        newNs: nsMask(u32at(v, at + cw_fork.fields.new_ns[0])),
        late: u32at(v, at + cw_fork.fields.late[0]) !== 0,
      };
    case RecordType.EXEC:
      return exec(v, at, size, ktime, cpu, t);
    case RecordType.EXIT:
      return { kind: 'exit', ktime, cpu, task: t, exitStatus: v.i32[(at + cw_exit.fields.exit_code[0]) >>> 2] };
    case RecordType.CGROUP_MKDIR:
    case RecordType.CGROUP_RMDIR:
    case RecordType.CGROUP_ATTACH:
      return cgroup(v, at, type, ktime, cpu, t);
    case RecordType.SYSCALL:
      return syscall(v, at, ktime, cpu, t);
    case RecordType.OBJECT:
      return object(v, at, ktime, cpu, t);
    case RecordType.GUARD:
      return guard(v, at, ktime, cpu, t);
    case RecordType.CONNECT:
      return connect(v, at, ktime, cpu, t);
    case RecordType.URING:
      return uring(v, at, ktime, cpu, t);
  }
  return `unknown record type ${type}`;
}

function exec(v: Views, at: number, size: number, ktime: bigint, cpu: number, t: TaskInfo): KernelRecord | string {
  const F = cw_exec.fields;
  const nameLen = u32at(v, at + F.filename_len[0]);
  const argsLen = u32at(v, at + F.args_len[0]);
  if (nameLen < 1 || nameLen > EXEC_FILENAME_MAX) return `exec filename_len ${nameLen} is not 1 to ${EXEC_FILENAME_MAX}`;
  if (argsLen > EXEC_ARGS_MAX || EXEC_FIXED_SIZE + nameLen + argsLen > size)
    return `exec filename_len ${nameLen} and args_len ${argsLen} exceed record size ${size}`;
  const data = at + F.data[0];
  return {
    kind: 'exec',
    ktime,
    cpu,
    task: t,
    filename: cstr(v.buf, data, nameLen),
    argv: argv(v.buf, data + nameLen, argsLen),
    argsTruncated: u32at(v, at + F.args_truncated[0]) !== 0,
    oldPid: u32at(v, at + F.old_pid[0]),
    exe: {
      ino: v.u64[(at + F.exe_ino[0]) >>> 3],
      dev: u32at(v, at + F.exe_dev[0]),
      fsMagic: u32at(v, at + F.exe_fs_magic[0]),
      nlink: u32at(v, at + F.exe_nlink[0]),
      mtime: i64(v, at + F.exe_mtime[0]),
      ctime: i64(v, at + F.exe_ctime[0]),
    },
  };
}

function cgroup(v: Views, at: number, type: keyof typeof CGROUP_KINDS, ktime: bigint, cpu: number, t: TaskInfo): CgroupRecord {
  const F = cw_cgroup.fields;
  return {
    kind: CGROUP_KINDS[type],
    ktime,
    cpu,
    task: t,
    cgroupId: v.u64[(at + F.cgroup_id[0]) >>> 3],
    hierarchyId: u32at(v, at + F.hierarchy_id[0]),
    level: u32at(v, at + F.level[0]),
    path: cstr(v.buf, at + F.path[0], F.path[1]),
  };
}

function syscall(v: Views, at: number, ktime: bigint, cpu: number, t: TaskInfo): SyscallRecord | string {
  const F = cw_syscall.fields;
  const buf = v.buf;
  const sc = u32at(v, at + F.sc[0]);
  const name = SYSCALL_NAMES[sc];
  if (!name) return `unknown syscall ${sc}`;
  const q = (at + F.args[0]) >>> 3;
  const r: SyscallRecord = {
    kind: 'syscall',
    ktime,
    cpu,
    task: t,
    syscall: name as SyscallName,
    ret: v.i32[(at + F.ret[0]) >>> 2],
    args: [v.u64[q], v.u64[q + 1], v.u64[q + 2], v.u64[q + 3]],
    oldNs: namespaces(v.u32, (at + F.old_ns[0]) >>> 2),
    path0: cstr(buf, at + F.path0[0], F.path0[1]),
    path1: cstr(buf, at + F.path1[0], F.path1[1]),
    fstype: cstr(buf, at + F.fstype[0], F.fstype[1]),
  };
  const k = killAt(buf, at + F.kill[0]);
  if (k) r.kill = k;
  return r;
}

function guard(v: Views, at: number, ktime: bigint, cpu: number, t: TaskInfo): GuardRecord | string {
  const F = cw_guard.fields;
  const what = u32at(v, at + F.what[0]);
  if (what !== GuardWhat.SIGNAL && what !== GuardWhat.PTRACE) return `unknown guard record ${what}`;
  const r: GuardRecord = {
    kind: 'guard',
    ktime,
    cpu,
    task: t,
    what: what === GuardWhat.SIGNAL ? 'signal' : 'ptrace',
    targetTid: u32at(v, at + F.target_tid[0]),
    sig: v.i32[(at + F.sig[0]) >>> 2],
    code: v.i32[(at + F.code[0]) >>> 2],
    result: v.i32[(at + F.result[0]) >>> 2],
  };
  const k = killAt(v.buf, at + F.kill[0]);
  if (k) r.kill = k;
  return r;
}

function connect(v: Views, at: number, ktime: bigint, cpu: number, t: TaskInfo): KernelRecord | string {
  const F = cw_connect.fields;
  const buf = v.buf;
  const fam = buf.readUInt16LE(at + F.family[0]);
  if (fam !== AF_UNIX && fam !== AF_INET && fam !== AF_INET6) return `unknown connect family ${fam}`;
  return {
    kind: 'connect',
    ktime,
    cpu,
    task: t,
    family: fam === AF_UNIX ? 'unix' : fam === AF_INET ? 'inet' : 'inet6',
    ret: v.i32[(at + F.ret[0]) >>> 2],
    fd: u32at(v, at + F.fd[0]),
    peerDev: u32at(v, at + F.peer_dev[0]),
    peerIno: v.u64[(at + F.peer_ino[0]) >>> 3],
    peerPath: fam === AF_UNIX ? cstr(buf, at + F.path[0], F.path[1]) : '',
    port: buf.readUInt16LE(at + F.port[0]),
    addr: fam === AF_UNIX ? '' : ipString(buf, at + F.addr[0], fam),
  };
}

function uring(v: Views, at: number, ktime: bigint, cpu: number, t: TaskInfo): KernelRecord {
  const F = cw_uring.fields;
  return {
    kind: 'uring',
    ktime,
    cpu,
    task: t,
    opcode: u32at(v, at + F.opcode[0]),
    userData: v.u64[(at + F.user_data[0]) >>> 3],
    sqThread: u32at(v, at + F.sq_thread[0]) !== 0,
  };
}

function object(v: Views, at: number, ktime: bigint, cpu: number, t: TaskInfo): ObjectRecord | string {
  const F = cw_obj.fields;
  const buf = v.buf;
  const sc = u32at(v, at + F.sc[0]);
  const name = SYSCALL_NAMES[sc];
  if (!name) return `unknown syscall ${sc}`;
  const flags = u32at(v, at + F.oflags[0]);
  const chain: string[] = [];
  for (let i = 0; i < CHAIN_DEPTH; i++) {
    const s = cstr(buf, at + F.chain[0] + i * NAME_LEN, NAME_LEN);
    if (!s) break;
    chain.unshift(s);
  }
  const r: ObjectRecord = {
    kind: 'object',
    ktime,
    cpu,
    task: t,
    syscall: name as SyscallName,
    ret: v.i32[(at + F.ret[0]) >>> 2],
    arg: v.u64[(at + F.arg[0]) >>> 3],
    dev: u32at(v, at + F.dev[0]),
    magic: u32at(v, at + F.magic[0]),
    fstype: cstr(buf, at + F.fstype[0], F.fstype[1]),
    ino: v.u64[(at + F.ino[0]) >>> 3],
    fMode: u32at(v, at + F.f_mode[0]),
    flags,
    mntId: u32at(v, at + F.mnt_id[0]),
    chain,
    chainTruncated: (flags & ObjFlag.CHAIN_TRUNC) !== 0,
    path: cstr(buf, at + F.path[0], F.path[1]),
  };
  if (flags & ObjFlag.TARGET) {
    r.target = {
      tgid: u32at(v, at + F.target_tgid[0]),
      vpid: (flags & ObjFlag.TARGET_VPID) !== 0,
      pidns: u32at(v, at + F.target_pidns[0]),
      inNs: (flags & ObjFlag.TARGET_IN_NS) !== 0,
      startNs: v.u64[(at + F.target_start_ns[0]) >>> 3],
    };
  }
  if (flags & ObjFlag.REF)
    r.ref = { dev: u32at(v, at + F.ref_dev[0]), ino: v.u64[(at + F.ref_ino[0]) >>> 3], beneath: (flags & ObjFlag.REF_BENEATH) !== 0 };
  const k = killAt(buf, at + F.kill[0]);
  if (k) r.kill = k;
  return r;
}

/**
 * Decodes one drained batch: records back to back, each 8-byte aligned. Never
 * throws: a bad record is reported in `errors` and skipped by its size; a size
 * that cannot be trusted ends the batch there (reported too).
 */
export function decodeBatch(input: Buffer): DecodedBatch {
  const records: KernelRecord[] = [];
  const errors: DecodeError[] = [];
  const v = views(input);
  const buf = v.buf;
  let at = 0;
  while (at < buf.length) {
    if (buf.length - at < cw_hdr.size) {
      errors.push({ offset: at, reason: `truncated header: ${buf.length - at} bytes left` });
      break;
    }
    const type = buf.readUInt16LE(at + cw_hdr.fields.type[0]);
    const size = buf.readUInt16LE(at + cw_hdr.fields.size[0]);
    if (size < cw_hdr.size || size > buf.length - at) {
      errors.push({ offset: at, reason: `bad record size ${size} (${buf.length - at} bytes left)` });
      break;
    }
    const min = MIN_SIZE[type];
    if (min === undefined) {
      errors.push({ offset: at, reason: `unknown record type ${type}` });
    } else if (size < min) {
      errors.push({ offset: at, reason: `record type ${type} size ${size} below its minimum ${min}` });
    } else {
      const r = one(v, at, type, size);
      if (typeof r === 'string') errors.push({ offset: at, reason: r });
      else records.push(r);
    }
    at += (size + 7) & ~7;
  }
  return { records, errors };
}
