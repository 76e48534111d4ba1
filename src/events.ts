import { hostname } from 'node:os';
import type { ContainerEventInput, EventInput, ProcessInput } from './proto/schema';
import type { Proc } from './process/table';
import { capNames } from './container/caps';

/** Stamps events: sequence, wall time, node, boot. */
export class EventStamper {
  private seq = 0n;
  /** Wall-clock ns minus monotonic ns, taken once at start. */
  private readonly offset: bigint;
  readonly node: string;

  constructor(
    readonly bootId: string,
    node = hostname(),
  ) {
    this.node = node;
    this.offset = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  }

  /** CLOCK_MONOTONIC ns (kernel ktime) to Unix ns. */
  wall(ktime: bigint): bigint {
    return ktime + this.offset;
  }

  stamp(e: EventInput, ktime?: bigint): EventInput {
    this.seq += 1n;
    return {
      seq: this.seq,
      timeUnixNano: ktime !== undefined ? this.wall(ktime) : BigInt(Date.now()) * 1_000_000n,
      node: this.node,
      bootId: this.bootId,
      ...e,
    };
  }
}

export function processInput(p: Proc): ProcessInput {
  return {
    pid: p.tgid,
    startTimeNs: p.startNs,
    exe: p.exe,
    argv: p.argv,
    uid: p.uid,
    euid: p.euid,
    capEffective: capNames(p.capEffective),
    ppid: p.ppid,
    comm: p.comm,
    parentStartTimeNs: p.parentStartNs,
  };
}

/** Wait status to exit code and signal. */
export function exitFields(status: number | undefined): Pick<ContainerEventInput, 'exitCode' | 'signal'> {
  if (status === undefined) return {};
  const sig = status & 0x7f;
  return sig ? { signal: sig, exitCode: 128 + sig } : { exitCode: (status >> 8) & 0xff };
}
