export const SEVERITIES = ['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Every rule: stable id, ATT&CK techniques, default severity, one line of what it means. */
export interface RuleInfo<Id extends string = string> {
  id: Id;
  techniques: string[];
  severity: Severity;
  summary: string;
}

/** The catalogue as written, its ids kept as literal types (RuleId below). */
function catalogue<const Id extends string>(rules: readonly RuleInfo<Id>[]): readonly RuleInfo<Id>[] {
  return rules;
}

/** Every rule ctrwatch has. Ids are stable: policies and SIEM queries name them. */
export const RULES = catalogue([
  // T1611 Escape to Host — at start
  {
    id: 'escape.privileged-container',
    techniques: ['T1611'],
    severity: 'HIGH',
    summary: 'container runs privileged (nearly every capability, no seccomp, no masked paths)',
  },
  {
    id: 'escape.host-namespaces',
    techniques: ['T1611'],
    severity: 'HIGH',
    summary: "container shares the host's pid, ipc or mount namespace (MEDIUM for net or uts alone)",
  },
  {
    id: 'escape.root-container',
    techniques: ['T1611'],
    severity: 'LOW',
    summary: 'container entrypoint runs as root without a user namespace',
  },
  {
    id: 'escape.sensitive-mount',
    techniques: ['T1611'],
    severity: 'HIGH',
    summary: 'host /, /proc, /sys, /etc, kubelet state, a block device or a runtime socket mounted in (CRITICAL for /, devices, sockets)',
  },
  // T1611 — actions
  {
    id: 'escape.setns-host',
    techniques: ['T1611'],
    severity: 'CRITICAL',
    summary: "a container process joined one of the host's namespaces (setns, nsenter)",
  },
  {
    id: 'escape.mount-cgroupfs',
    techniques: ['T1611'],
    severity: 'HIGH',
    summary: 'a container process mounted a cgroup hierarchy (mount(2) or the new mount API), or made a writable copy of one',
  },
  {
    id: 'escape.mount-device',
    techniques: ['T1611'],
    severity: 'CRITICAL',
    summary:
      'a container process mounted a filesystem on a block device (CRITICAL for a device the host has mounted, MEDIUM for a loop device)',
  },
  {
    id: 'escape.kernel-control-write',
    techniques: ['T1611'],
    severity: 'CRITICAL',
    summary:
      'a container process opened release_agent, core_pattern, uevent_helper, modprobe or sysrq-trigger for writing, by any path (HIGH for notify_on_release)',
  },
  {
    id: 'escape.process-memory-write',
    techniques: ['T1611'],
    severity: 'CRITICAL',
    summary:
      'a container process wrote (or opened for writing) the memory of a process outside the container: /proc/<pid>/mem, process_vm_writev',
  },
  {
    id: 'escape.pidfd-getfd',
    techniques: ['T1611'],
    severity: 'HIGH',
    summary: 'a container process took a file descriptor of a process outside the container (pidfd_getfd)',
  },
  { id: 'escape.module-load', techniques: ['T1611'], severity: 'CRITICAL', summary: 'a container process loaded a kernel module' },
  {
    id: 'escape.ptrace-host',
    techniques: ['T1611'],
    severity: 'HIGH',
    summary: 'a container process attached with ptrace to a process outside the container',
  },
  {
    id: 'escape.chroot-host',
    techniques: ['T1611'],
    severity: 'HIGH',
    summary: "a container process changed root (chroot, pivot_root) to the host's / by any path (MEDIUM for another host filesystem)",
  },
  {
    id: 'escape.usermode-helper',
    techniques: ['T1611'],
    severity: 'CRITICAL',
    summary: 'the kernel ran a program on behalf of a container (release agent, core_pattern pipe) — LOW when no container set it up',
  },
  {
    id: 'escape.bpf-from-container',
    techniques: ['T1611', 'T1562.001'],
    severity: 'CRITICAL',
    summary:
      "a container process called bpf() (CRITICAL when a map or program fd by id, a map update or delete, or a detach succeeded; HIGH for other commands and refused calls): with it a container reads and rewrites kernel state outside itself — the host (T1611) and the sensor's own maps (T1562.001)",
  },
  {
    id: 'escape.io-uring-setup',
    techniques: ['T1611', 'T1562.006'],
    severity: 'MEDIUM',
    summary:
      "a container process set up an io_uring (Docker's default seccomp profile forbids it): the interface behind many kernel privilege escalations (T1611), whose operations bypass syscall-based telemetry (T1562.006)",
  },
  // T1562 Impair Defenses — against the sensor itself
  {
    id: 'sensor.signal',
    techniques: ['T1562.001'],
    severity: 'CRITICAL',
    summary:
      "a container process sent a signal to the sensor, whatever the signal (HIGH for a stop signal from a host process; a host process's other signals, such as an operator's SIGTERM, are not reported)",
  },
  {
    id: 'sensor.ptrace',
    techniques: ['T1562.001'],
    severity: 'CRITICAL',
    summary: 'a process attached to the sensor with ptrace or tried to (HIGH when a host process did)',
  },
  {
    id: 'evasion.io-uring-ops',
    techniques: ['T1562.006'],
    severity: 'LOW',
    summary:
      'a container submitted open or connect operations through io_uring, out of sight of the syscall hooks (counted per container, reported at most once a minute)',
  },
  // T1610 Deploy Container
  {
    id: 'deploy.image-not-allowed',
    techniques: ['T1610'],
    severity: 'MEDIUM',
    summary: "container started from an image outside the policy's allowlist",
  },
  {
    id: 'deploy.unknown-runtime',
    techniques: ['T1610'],
    severity: 'MEDIUM',
    summary: 'container made by something that is not a known runtime',
  },
  {
    id: 'deploy.from-container',
    techniques: ['T1610', 'T1611'],
    severity: 'HIGH',
    summary:
      "a container deployed another one (a runtime CLI or a runtime's socket used from inside a container), or made one itself (LOW in a user namespace of its own: sandboxes)",
  },
  {
    id: 'deploy.pod-outside-kubelet',
    techniques: ['T1610'],
    severity: 'HIGH',
    summary:
      "a pod sandbox made while a process other than the kubelet (policy criClients) held a connection to the runtime's API socket: a pod made through the CRI, past the API server",
  },
  // T1613 Container and Resource Discovery
  {
    id: 'discovery.runtime-cli',
    techniques: ['T1613'],
    severity: 'LOW',
    summary: 'container or orchestrator enumeration by CLI (HIGH from a container, MEDIUM by an unexpected user)',
  },
  {
    id: 'discovery.runtime-socket',
    techniques: ['T1613'],
    severity: 'HIGH',
    summary:
      "a container process connected to a container runtime's API: a unix socket known by its inode or bound under a runtime's name, or a runtime or kubelet TCP port (MEDIUM for a refused TCP attempt)",
  },
  {
    id: 'discovery.service-account-token',
    techniques: ['T1613'],
    severity: 'MEDIUM',
    summary:
      "a process of a pod read its service-account token (a file on the pod's token volume, by any path) and a process of the same container then connected to a Kubernetes API server within 5 minutes: what every in-cluster client does too (LOW when the container's own entry process did both; HIGH for another pod's token)",
  },
  // T1053.007 Container Orchestration Job
  { id: 'orchestration.k8s-job', techniques: ['T1053.007'], severity: 'LOW', summary: 'container of a Kubernetes Job or CronJob' },
  {
    id: 'orchestration.scheduled-image',
    techniques: ['T1053.007'],
    severity: 'LOW',
    summary: 'the same image started again and again at a regular interval',
  },
  // T1543.005 Container Service
  {
    id: 'persistence.restart-policy',
    techniques: ['T1543.005'],
    severity: 'LOW',
    summary: 'container with an always / unless-stopped restart policy',
  },
  {
    id: 'persistence.service-unit',
    techniques: ['T1543.005'],
    severity: 'LOW',
    summary: 'a container started from a service manager unit',
  },
  { id: 'persistence.oci-hook', techniques: ['T1543.005'], severity: 'MEDIUM', summary: 'the OCI bundle runs host programs as hooks' },
  // T1204.003 Malicious Image
  { id: 'image.first-seen', techniques: ['T1204.003'], severity: 'LOW', summary: 'an image never seen on this node before' },
  {
    id: 'image.local-import',
    techniques: ['T1204.003'],
    severity: 'MEDIUM',
    summary: 'an image imported or built on this node (LOW for the import itself)',
  },
  {
    id: 'drift.exec-new-file',
    techniques: ['T1204.003'],
    severity: 'HIGH',
    summary: 'a container (its init too, after the entrypoint) ran a file written or changed after it started',
  },
  {
    id: 'drift.exec-fileless',
    techniques: ['T1204.003'],
    severity: 'HIGH',
    summary: 'a container ran a file with no name left: a memfd or a deleted file (execveat of an fd)',
  },
]);

/** A rule's id: only the catalogue's, so that a misspelt id does not compile. */
export type RuleId = (typeof RULES)[number]['id'];

/** By id; looked up with strings that come from outside too (policy files). */
export const RULE_BY_ID: ReadonlyMap<string, RuleInfo<RuleId>> = new Map(RULES.map((r) => [r.id, r]));
