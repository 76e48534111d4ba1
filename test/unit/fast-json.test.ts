import { describe, expect, it } from 'vitest';
import { fastJsonLine } from '../../src/proto/fast-json';
import { toJsonLine, type EventInput } from '../../src/proto/schema';

const container = {
  id: 'abc',
  runtime: 'DOCKER' as const,
  name: 'web',
  image: 'localhost/busybox:latest',
  initPid: 42,
  cgroupPath: '/docker/abc',
  user: '0',
  privileged: false,
  capabilities: ['CAP_CHOWN', 'CAP_KILL'],
  hostNamespaces: ['CGROUP' as const, 'USER' as const],
  mounts: [
    { source: '/', destination: '/host', readOnly: false, type: 'bind' },
    { source: 'proc', destination: '/proc', type: 'proc' },
  ],
  labels: { 'io.kubernetes.pod.name': 'p', empty: '' },
  existing: false,
  cgroupId: 1234n,
  restartPolicy: '',
};
const proc = {
  pid: 7,
  startTimeNs: 123456789012345678n,
  exe: '/bin/sh',
  argv: ['sh', '-c', 'exit 0', ''],
  uid: 0,
  euid: 1000,
  capEffective: [],
  ppid: 1,
  comm: 'sh',
  parentStartTimeNs: 0n,
};
const events: EventInput[] = [
  {
    seq: 1n,
    timeUnixNano: 1795924627332748465n,
    node: 'vm',
    bootId: 'b',
    sensorReady: { version: '0.1.0', existingContainers: 0, hooks: [] },
  },
  { seq: 2n, timeUnixNano: 5n, node: 'vm', bootId: '', sensorReady: {} },
  { seq: 18446744073709551615n, node: 'n', containerCreated: { container, process: proc } },
  { seq: 3n, containerStarted: { container: { ...container, existing: true, privileged: true }, process: {} } },
  { seq: 4n, containerExited: { container: { id: 'x', runtime: 'UNKNOWN' }, exitCode: 0, signal: 9 } },
  { seq: 5n, containerExec: { container, process: proc, parent: proc } },
  {
    seq: 6n,
    detection: {
      ruleId: 'escape.setns-host',
      techniques: ['T1611'],
      severity: 'CRITICAL',
      message: 'm "quoted" \\ \n',
      container,
      chain: [proc, proc],
      attributes: { a: '1' },
    },
  },
  { seq: 7n, detection: { ruleId: 'x', severity: 'INFO', chain: [], attributes: {} } },
  { seq: 8n, sensorStats: { eventsEmitted: 0n, ringBufferDrops: 3n, counters: { a: 0n, b: 5n } } },
];

describe('fastJsonLine', () => {
  it('prints what toJsonLine prints, field for field, for every kind of event', () => {
    for (const e of events)
      expect(
        JSON.parse(fastJsonLine(e)),
        JSON.stringify(e, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)),
      ).toEqual(JSON.parse(toJsonLine(e)));
  });
});
