// contain: containment on detect's findings — the guards, the kernel's kill maps, and the kill from user space.

export { Containment, type KillFn } from './containment';
export { decide, type Decision, type Outcome } from './decide';
export { KernelContainment, type ContainPort } from './kernel';
