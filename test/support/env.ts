import { existsSync } from 'node:fs';

/** Kernel tests need root and a kernel with BTF; without them only unit tests run. */
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
export const hasBtf = existsSync('/sys/kernel/btf/vmlinux');
export const canRunKernelTests = isRoot && hasBtf;
