// container: containers from kernel facts — the cgroup registry, the lifecycle (created, started, exec, exited), enrichment from runtime files, the startup scan.

export { CgroupRegistry } from './cgroups';
export { Lifecycle, type ContainerFacts, type LifecycleEvent } from './lifecycle';
export { Enricher } from './enrich';
export { scanExisting } from './scan';
