import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { DecodedBatch } from './decode/records';
import { readHostFs, type HostFacts } from './host';
import { CgroupRegistry } from './container/cgroups';
import { Enricher, type EnrichedMeta } from './container/enrich';
import { Lifecycle, nsFromArray, type ContainerFacts, type LifecycleEvent } from './container/lifecycle';
import { containerLines, scanExisting } from './container/scan';
import { EventStamper, exitFields, processInput } from './events';
import { readProc } from './process/procfs';
import { ProcessTable } from './process/table';
import type { ContainerInput, EventInput, ProcessInput } from './proto/schema';
import { Detector } from './detect/detector';
import { DEFAULT_POLICY, type Policy } from './detect/policy';
import type { Finding } from './detect/types';
import type { Proc } from './process/table';
import { Containment, type KillFn } from './contain/containment';
import { KERNEL_CLASSES } from './detect/actions';
import { KernelContainment, type ContainPort } from './contain/kernel';
import type { KernelKill } from './decode/records';
import type { RuntimeSockets } from './container/runtime-sockets';
import { TokenVolumes, type TokenPort } from './container/token-volumes';
import { parseApiAddress } from './detect/api-address';

/** How often the host's mounted devices are re-read (for escape.mount-device and escape.chroot-host). */
const HOST_FS_EVERY_NS = 30_000_000_000n;

export interface PipelineOptions {
  logger: Logger;
  host: HostFacts;
  /**
   * Receives every event, stamped, in order. urgent false: the startup's report (sensorReady and
   * the containers that ran already), which sinks may write as one batch; undefined: by its kind.
   */
  emit: (e: EventInput, urgent?: false) => void;
  /** Reads processes the kernel did not report; /proc by default. */
  lookupProcs?: boolean;
  /** Adds processes found at start to the kernel's follow set (KernelSensor.follow). */
  follow?: (procs: { tgid: number; startNs: bigint }[]) => { added: number; existing: number };
  policy?: Policy;
  /** Kills one process (pid, start) for rules whose policy action is kill; refuses with -ENOSYS by default. */
  kill?: KillFn;
  /** The kernel's containment maps: armed from the policy, told of containers and host devices. */
  contain?: ContainPort;
  /** Runtime API sockets by file identity (discovery.runtime-socket). */
  runtimeSockets?: RuntimeSockets;
  /** The stamp stage (seq, wall time); one of its own by default. */
  stamper?: EventStamper;
  /** The kernel's service-account volumes and API server addresses (discovery.service-account-token). */
  tokens?: TokenPort;
}

const ENOSYS = 38;
/** Engines give their containers images; bare OCI runtimes and unknown makers do not. */
const imageBasedRuntime = (r: string | undefined) => !!r && !['RUNC', 'CRUN', 'UNKNOWN'].includes(r);
const PATH_NAME = { kernel: 'KERNEL', user: 'USER_SPACE' } as const;

/**
 * decode → process table → container lifecycle → enrichment → events. Every
 * stage but the /proc and metadata reads at the edges is a plain function of
 * its input.
 */
export class Pipeline {
  readonly procs: ProcessTable;
  readonly cgroups: CgroupRegistry;
  readonly lifecycle: Lifecycle;
  readonly stamper: EventStamper;
  private readonly enricher: Enricher;
  private readonly detector: Detector;
  readonly containment: Containment;
  private readonly kernelContain?: KernelContainment;
  readonly tokens: TokenVolumes<ContainerFacts>;
  private selfCgroup?: bigint;
  private hostFsAt = 0n;
  private readonly log: Logger;
  private records = 0;
  /** In start(): its events are the startup's report, not starts a reader waits for. */
  private starting = false;
  private events = 0;
  private detections = 0;

  constructor(private readonly o: PipelineOptions) {
    this.log = o.logger.child({ component: 'pipeline' });
    const hostNs = nsFromArray(o.host.hostNs);
    this.cgroups = new CgroupRegistry(o.host.cgroup);
    this.procs = new ProcessTable({
      lookup: o.lookupProcs === false ? undefined : (pid) => readProc(pid, (x) => this.cgroups.idOfPid(x)),
    });
    this.lifecycle = new Lifecycle(this.procs, hostNs);
    this.enricher = new Enricher(this.procs, hostNs, this.cgroups, o.logger);
    this.stamper = o.stamper ?? new EventStamper(o.host.bootId);
    this.containment = new Containment({
      policy: o.policy ?? DEFAULT_POLICY,
      selfPid: process.pid,
      kill: o.kill ?? (() => -ENOSYS),
      logger: this.log,
    });
    if (o.contain) this.kernelContain = new KernelContainment({ policy: o.policy ?? DEFAULT_POLICY, port: o.contain, logger: this.log });
    const apiServers = (o.policy ?? DEFAULT_POLICY).apiServers.map(parseApiAddress);
    this.tokens = new TokenVolumes<ContainerFacts>({ port: o.tokens, apiServers, logger: o.logger });
    this.detector = new Detector({
      tokens: this.tokens,
      procs: this.procs,
      lifecycle: this.lifecycle,
      cgroups: this.cgroups,
      host: hostNs,
      hostFs: o.host.fs,
      policy: o.policy ?? DEFAULT_POLICY,
      wall: (t) => this.stamper.wall(t),
      logger: o.logger,
      runtimeSockets: o.runtimeSockets,
      containerOf: (c) => {
        const meta = this.meta(c);
        return { k: this.enricher.withEntry(meta, c), meta };
      },
    });
  }

  /** kill: the cw_kill of the record the findings came from. */
  private detect(fs: Finding[], ktime?: bigint, kill?: KernelKill): void {
    if ((kill?.outcome === 'killed' || kill?.outcome === 'denied') && !fs.some((f) => KERNEL_CLASSES[f.ruleId]?.includes(kill.cls)))
      // The kernel decided from its own facts (cgroups) where the rule, by lineage, saw nothing to report.
      this.log.warn({ class: kill.cls, outcome: kill.outcome }, 'the kernel acted on an action no rule reported');
    // The findings of one record or container start mostly share their actor: its chain is
    // walked once (a walk can read /proc for ancestors the kernel never reported), so that each
    // detection after the first goes out sooner.
    let chainOf: Proc | undefined;
    let chainIn: ProcessInput[] = [];
    for (const f of fs) {
      this.detections++;
      const container: ContainerInput | undefined = f.container ? this.enricher.withEntry(this.meta(f.container), f.container) : undefined;
      if (f.actor !== chainOf) {
        chainOf = f.actor;
        chainIn = f.actor ? this.procs.chain(f.actor, 8).map((x: Proc) => processInput(x)) : [];
      }
      const chain = chainIn;
      const act = this.containment.apply(f, container?.image, kill, imageBasedRuntime(container?.runtime));
      const containment = act.outcome && { outcome: act.outcome, path: act.path && PATH_NAME[act.path], reason: act.reason };
      this.emit(
        {
          detection: {
            ruleId: f.ruleId,
            techniques: this.detector.techniques(f.ruleId),
            severity: f.severity,
            message: f.message,
            container,
            chain,
            attributes: f.attributes,
            containment,
          },
        },
        ktime,
      );
    }
  }

  private emit(e: EventInput, ktime?: bigint): void {
    this.events++;
    if (this.starting) this.o.emit(this.stamper.stamp(e, ktime), false);
    else this.o.emit(this.stamper.stamp(e, ktime));
  }

  /**
   * Startup: reads the cgroup tree and /proc, adopts the containers that run
   * already, emits sensorReady, then each of them once (containerStarted with
   * existing: true — never as newly created).
   */
  start(ready: Omit<NonNullable<EventInput['sensorReady']>, 'existingContainers'>): number {
    this.kernelContain?.arm();
    this.kernelContain?.hostFs(this.o.host.fs);
    this.cgroups.walk();
    const found = scanExisting(nsFromArray(this.o.host.hostNs), this.procs, (pid) => this.cgroups.idOfPid(pid));
    for (const c of found) this.lifecycle.adopt(c);
    for (const c of found) this.nameToKernel(c);
    if (this.o.follow) {
      // Processes that ran before the sensor: followed like those it saw start.
      const lines = containerLines(this.procs, this.lifecycle);
      try {
        this.log.info({ processes: lines.length, ...this.o.follow(lines) }, 'existing container processes followed');
      } catch (err) {
        this.log.error({ err }, 'existing container processes could not be followed: their actions go unseen');
      }
    }
    this.starting = true;
    try {
      this.emit({ sensorReady: { ...ready, existingContainers: found.length } });
      for (const c of found) {
        const meta = this.meta(c);
        this.emit({ containerStarted: { container: this.enricher.withEntry(meta, c), process: c.entry && processInput(c.entry) } });
        this.detect(this.detector.onLifecycle({ kind: 'started', c, ktime: process.hrtime.bigint(), process: c.entry! }));
      }
    } finally {
      this.starting = false;
    }
    return found.length;
  }

  /** Tells the kernel's containment the container's cgroup and what it may do there, and the token watch its pod's volume. */
  private nameToKernel(c: ContainerFacts): void {
    const meta = this.meta(c);
    this.tokens.add(c, meta.container, meta.oci?.kubernetesService);
    if (!this.kernelContain) return;
    this.selfCgroup ??= this.cgroups.idOfPid(process.pid);
    const k = this.enricher.withEntry(this.meta(c), c);
    this.kernelContain.container(c, this.lifecycle.ownsCgroup(c), k.image, this.selfCgroup, imageBasedRuntime(k.runtime));
  }

  private meta(c: ContainerFacts): EnrichedMeta {
    if (!c.meta) c.meta = this.enricher.enrich(c);
    return c.meta as EnrichedMeta;
  }

  onBatch(batch: DecodedBatch): void {
    for (const r of batch.records) {
      this.records++;
      const p = this.procs.apply(r);
      this.cgroups.onRecord(r);
      const evs = this.lifecycle.onRecord(r, p);
      for (const ev of evs) {
        this.report(ev);
        this.detect(this.detector.onLifecycle(ev), ev.ktime);
      }
      this.detect(this.detector.onRecord(r, p), r.ktime, 'kill' in r ? r.kill : undefined);
      if (r.kind === 'cgroup_rmdir') this.cgroups.forget(r.cgroupId);
    }
  }

  private report(ev: LifecycleEvent): void {
    const c = ev.c;
    if (ev.kind === 'created' || ev.kind === 'started') this.nameToKernel(c);
    else if (ev.kind === 'exited') {
      this.kernelContain?.exited(c);
      this.tokens.remove(c);
    }
    const meta = this.meta(c);
    const container = this.enricher.withEntry(meta, c);
    switch (ev.kind) {
      case 'created': {
        const creator = c.runtimeCall ? this.procs.get(c.runtimeCall.pid) : c.creator;
        this.emit({ containerCreated: { container, process: creator && processInput(creator) } }, ev.ktime);
        return;
      }
      case 'started':
        this.emit({ containerStarted: { container, process: processInput(ev.process) } }, ev.ktime);
        return;
      case 'exec': {
        const parent = this.procs.parent(ev.process);
        this.emit({ containerExec: { container, process: processInput(ev.process), parent: parent && processInput(parent) } }, ev.ktime);
        return;
      }
      case 'exited':
        this.emit({ containerExited: { container, process: c.entry && processInput(c.entry), ...exitFields(ev.exitStatus) } }, ev.ktime);
        return;
    }
  }

  /**
   * Periodic upkeep: forget processes that exited long enough ago, and host
   * processes that are gone (the kernel sends no exit for those: only their exec);
   * write what must survive a restart.
   */
  sweep(nowNs = process.hrtime.bigint(), pruneGone = false): void {
    this.procs.sweep(nowNs);
    this.flush();
    if (pruneGone) this.procs.prune((p) => existsSync(`/proc/${p.tgid}`));
    if (pruneGone && this.o.host.fs && nowNs - this.hostFsAt >= HOST_FS_EVERY_NS) {
      this.hostFsAt = nowNs;
      try {
        const fs = readHostFs();
        this.detector.setHostFs(fs);
        this.kernelContain?.hostFs(fs);
      } catch (err) {
        this.log.warn({ err }, 'cannot re-read the host mounts; keeping the last ones');
      }
    }
  }

  /** Writes the state kept across restarts (the images seen) if it changed: the upkeep, and the stop. */
  flush(): void {
    this.detector.flushImages();
  }

  /** Records seen so far. */
  recordCount(): number {
    return this.records;
  }

  stats(): {
    records: number;
    events: number;
    detections: number;
    processes: number;
    containers: number;
    enrichFailures: number;
    imageStoreErrors: { read: number; write: number };
    containment: Record<string, number>;
  } {
    return {
      enrichFailures: this.enricher.failures,
      containment: Object.fromEntries(this.containment.byRule),
      records: this.records,
      events: this.events,
      detections: this.detections,
      processes: this.procs.size,
      containers: this.lifecycle.count,
      imageStoreErrors: this.detector.imageStoreErrors(),
    };
  }
}
