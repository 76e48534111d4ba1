import { hostname } from 'node:os';
import type { ContainerEventInput, EventInput, ProcessInput } from './proto/schema';
import type { Proc } from './process/table';
import { capNames } from './container/caps';
import { encodeOnce } from './proto/codec-encode';

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

/**
 * The inputs made lately, by process: a container's init and its runtime travel in several
 * events (created, started, a detection's chain, exited). Reused while the process is unchanged
 * and marked to be encoded once (proto/codec-encode.ts), so that the later events copy its bytes.
 * Bounded, newest kept: a process of no recent event holds nothing.
 */
const INPUTS_MAX = 1024;
const inputs = new Map<Proc, { input: ProcessInput; caps: bigint }>();

function sameInput(i: ProcessInput, p: Proc): boolean {
  return (
    i.pid === p.tgid &&
    i.startTimeNs === p.startNs &&
    i.exe === p.exe &&
    i.argv === p.argv &&
    i.uid === p.uid &&
    i.euid === p.euid &&
    i.ppid === p.ppid &&
    i.comm === p.comm &&
    i.parentStartTimeNs === p.parentStartNs
  );
}

/** What an event says of a process. Frozen (shared by the events about it): never change it. */
export function processInput(p: Proc): ProcessInput {
  const had = inputs.get(p);
  if (had && had.caps === p.capEffective && sameInput(had.input, p)) return had.input;
  const input = encodeOnce<ProcessInput>({
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
  });
  if (had) inputs.delete(p);
  else if (inputs.size >= INPUTS_MAX) inputs.delete(inputs.keys().next().value!);
  inputs.set(p, { input, caps: p.capEffective });
  return input;
}

/** Wait status to exit code and signal. */
export function exitFields(status: number | undefined): Pick<ContainerEventInput, 'exitCode' | 'signal'> {
  if (status === undefined) return {};
  const sig = status & 0x7f;
  return sig ? { signal: sig, exitCode: 128 + sig } : { exitCode: (status >> 8) & 0xff };
}
