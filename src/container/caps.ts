/** Capability names by bit number (include/uapi/linux/capability.h). */
export const CAP_NAMES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const;

/** Masks seen so far and their names: a node has few distinct capability sets. */
const NAMES_OF = new Map<bigint, readonly string[]>();
const NAMES_OF_MAX = 256;

function namesOf(mask: bigint): string[] {
  const out: string[] = [];
  const lo = Number(mask & 0xffffffffn);
  const hi = Number((mask >> 32n) & 0xffffffffn);
  for (let i = 0; i < 32; i++) if ((lo >>> i) & 1) out.push(CAP_NAMES[i] ?? `CAP_${i}`);
  for (let i = 0; i < 32; i++) if ((hi >>> i) & 1) out.push(CAP_NAMES[i + 32] ?? `CAP_${i + 32}`);
  return out;
}

/**
 * The names of a capability mask's bits, lowest first: one frozen array per mask, shared by
 * every caller (events carry it, and the encoder keeps their bytes: a copy a call cost an
 * allocation and a freeze for each event input made). Never change it.
 */
export function capNames(mask: bigint): string[] {
  let names = NAMES_OF.get(mask);
  if (!names) {
    names = Object.freeze(namesOf(BigInt.asUintN(64, mask)));
    if (NAMES_OF.size >= NAMES_OF_MAX) NAMES_OF.clear();
    NAMES_OF.set(mask, names);
  }
  // Typed mutable for the event input types it goes into; frozen, a change throws.
  return names as string[];
}

export const CAP_SYS_ADMIN_BIT = 21n;
export const hasCap = (mask: bigint, bit: bigint) => ((mask >> bit) & 1n) === 1n;
