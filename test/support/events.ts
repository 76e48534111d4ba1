// Synthetic stamped events for the delivery bench and tests: containerExec records (a
// detection every 50th, a sensorStats every 100th), about 300 bytes encoded. The container name
// is "<run>-<seq>" (stats: a counter "run_<run>"), so a reader can tell runs apart.

import type { EventInput } from '../../src/proto/schema';

export function syntheticEvent(seq: number, run: string, node: string, bootId: string): EventInput {
  const head = { seq, timeUnixNano: BigInt(Date.now()) * 1_000_000n, node, bootId };
  if (seq % 100 === 0) return { ...head, sensorStats: { eventsEmitted: seq, counters: { [`run_${run}`]: 1 } } };
  const container = {
    id: `${run}-${seq}`,
    name: `${run}-${seq}`,
    runtime: 'DOCKER' as const,
    image: 'docker.io/library/nginx:1.27',
    cgroupPath: `/docker/${run}`,
    initPid: 1000 + (seq % 5000),
  };
  const proc = {
    pid: 40000 + (seq % 20000),
    startTimeNs: 273410000000n + BigInt(seq),
    exe: '/bin/sh',
    argv: ['sh', '-c', 'id'],
    uid: 0,
    euid: 0,
    ppid: 4200,
    comm: 'sh',
  };
  if (seq % 50 === 0)
    return {
      ...head,
      detection: { ruleId: 'escape.host-ns-setns', techniques: ['T1611'], severity: 'HIGH', message: 'setns', container, chain: [proc] },
    };
  return {
    ...head,
    containerExec: { container, process: proc, parent: { pid: 4200, exe: '/usr/bin/runc', argv: ['runc', 'exec'], comm: 'runc' } },
  };
}
