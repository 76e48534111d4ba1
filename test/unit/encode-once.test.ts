import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { capNames } from '../../src/container/caps';
import { CgroupRegistry } from '../../src/container/cgroups';
import { Enricher, type EnrichedMeta } from '../../src/container/enrich';
import type { ContainerFacts } from '../../src/container/lifecycle';
import type { Namespaces } from '../../src/decode/records';
import type { Proc } from '../../src/process/table';
import { ProcessTable } from '../../src/process/table';
import { processInput } from '../../src/events';
import { compileEventCodec, encodeOnce } from '../../src/proto/codec';
import { loadEventSchema, type ContainerInput, type EventInput } from '../../src/proto/schema';

const schema = loadEventSchema();
const codec = compileEventCodec(schema);
const head = { timeUnixNano: 1795923700581988444n, node: 'node-a', bootId: '3f1e2d4c-0000-4000-8000-000000000001' };
const container = (): ContainerInput => ({
  id: 'c1',
  runtime: 'RUNC',
  image: 'busybox',
  capabilities: ['CAP_CHOWN', 'CAP_KILL'],
  mounts: [{ source: '/data', destination: '/data', type: 'bind' }],
  labels: { app: 'web', long: 'x'.repeat(300) },
  cgroupId: 42n,
});
const started = (seq: number, c: ContainerInput): EventInput => ({
  seq,
  ...head,
  containerStarted: { container: c, process: { pid: seq, argv: ['/bin/sh', String(seq)] } },
});

describe('capNames', () => {
  it('names each bit, lowest first, both halves of the mask, unknown bits by number', () => {
    expect(capNames(0n)).toEqual([]);
    expect(capNames((1n << 0n) | (1n << 21n))).toEqual(['CAP_CHOWN', 'CAP_SYS_ADMIN']);
    expect(capNames((1n << 39n) | (1n << 63n))).toEqual(['CAP_BPF', 'CAP_63']);
    expect(capNames((1n << 41n) - 1n)).toHaveLength(41);
  });

  it('hands out one frozen array per mask: a caller cannot change what the next one gets', () => {
    const a = capNames(1n << 21n);
    expect(Object.isFrozen(a)).toBe(true);
    expect(() => a.push('CAP_FORGED')).toThrow(TypeError);
    const b = capNames(1n << 21n);
    expect(b).toBe(a);
    expect(b).toEqual(['CAP_SYS_ADMIN']);
    expect(capNames(1n << 0n)).not.toBe(a);
  });
});

describe('encodeOnce', () => {
  it('a marked container encodes to the same bytes as an unmarked copy, in every event that carries it', () => {
    const marked = encodeOnce(container());
    for (let seq = 1; seq <= 3; seq++) {
      const plain = codec.encode(started(seq, container()));
      expect(codec.encode(started(seq, marked))).toEqual(plain);
      expect(codec.encode(started(seq, marked))).toEqual(schema.encodeEvent(started(seq, container())));
    }
    // The same object in another kind of event: the kept body is the Container message's, whatever carries it.
    const exited: EventInput = { seq: 9, ...head, containerExited: { container: marked, exitCode: 3 } };
    expect(codec.encode(exited)).toEqual(codec.encode({ ...exited, containerExited: { container: container(), exitCode: 3 } }));
  });

  it('freezes the message deeply: a change after marking throws instead of leaving stale bytes', () => {
    const marked = encodeOnce(container());
    codec.encode(started(1, marked));
    expect(() => {
      (marked as { image?: string }).image = 'other';
    }).toThrow(TypeError);
    expect(() => (marked.labels!['app'] = 'db')).toThrow(TypeError);
    expect(() => marked.capabilities!.push('CAP_SYS_ADMIN')).toThrow(TypeError);
    expect(codec.decode(codec.encode(started(1, marked))).containerStarted?.container?.image).toBe('busybox');
  });

  it('a marked message with a bad value is still refused, every time', () => {
    const bad = encodeOnce({ ...container(), initPid: -1 });
    expect(() => codec.encode(started(1, bad))).toThrow(/initPid/);
    expect(() => codec.encode(started(2, bad))).toThrow(/initPid/);
  });
});

describe('Enricher.withEntry', () => {
  const HOST: Namespaces = { mnt: 1, pid: 2, net: 3, uts: 4, ipc: 5, cgroup: 6, user: 7, time: 8 };
  const enricher = new Enricher(
    new ProcessTable(),
    HOST,
    new CgroupRegistry({ mode: 'v2', subsys: -1, hierarchy: 0, controller: 'cgroup2' }),
    pino({ level: 'silent' }),
  );
  const entry = (o: Partial<Proc> = {}): Proc =>
    ({
      tgid: 700,
      startNs: 1n,
      ppid: 1,
      parentStartNs: 0n,
      nspid: 1,
      comm: 'sh',
      exe: '/bin/sh',
      argv: [],
      uid: 0,
      euid: 0,
      capEffective: 1n << 21n,
      ns: { ...HOST, mnt: 99 },
      cgroupId: 5n,
      ...o,
    }) as Proc;
  const facts = (): ContainerFacts => ({
    key: 99,
    status: 'started',
    initTgid: 700,
    initStartNs: 1n,
    ns: { ...HOST, mnt: 99 },
    cgroupId: 5n,
    rootChange: 'pivot_root',
    createdNs: 0n,
    existing: false,
  });
  const meta: EnrichedMeta = { container: { id: 'c9', runtime: 'RUNC' }, problems: [] };

  it('answers with the same frozen object while its inputs stay, and a new one when the entry process changes', () => {
    const c = facts();
    c.entry = entry();
    const a = enricher.withEntry(meta, c);
    expect(a).toMatchObject({ id: 'c9', initPid: 700, user: '0', capabilities: ['CAP_SYS_ADMIN'], cgroupId: 5n });
    expect(Object.isFrozen(a)).toBe(true);
    expect(enricher.withEntry(meta, c)).toBe(a);
    c.entry = entry({ uid: 1000, capEffective: 0n });
    const b = enricher.withEntry(meta, c);
    expect(b).not.toBe(a);
    expect(b).toMatchObject({ user: '1000' });
    expect(b.capabilities ?? []).toEqual([]);
    // Another container with equal facts gets its own object.
    const d = facts();
    d.entry = c.entry;
    expect(enricher.withEntry(meta, d)).not.toBe(b);
  });
});

describe('processInput', () => {
  const proc = (o: Partial<Proc> = {}): Proc =>
    ({
      tgid: 800,
      startNs: 7n,
      ppid: 1,
      parentStartNs: 3n,
      nspid: 1,
      comm: 'sh',
      exe: '/bin/sh',
      argv: Object.freeze(['sh', '-c', 'id']) as unknown as string[],
      uid: 0,
      euid: 0,
      capEffective: (1n << 21n) | 1n,
      ns: { mnt: 1, pid: 2, net: 3, uts: 4, ipc: 5, cgroup: 6, user: 7, time: 8 },
      cgroupId: 5n,
      forked: false,
      ...o,
    }) as Proc;

  it('answers with the same frozen input while the process is unchanged, and a new one after it changed', () => {
    const p = proc();
    const a = processInput(p);
    expect(a).toMatchObject({ pid: 800, startTimeNs: 7n, exe: '/bin/sh', comm: 'sh', capEffective: ['CAP_CHOWN', 'CAP_SYS_ADMIN'] });
    expect(Object.isFrozen(a)).toBe(true);
    expect(processInput(p)).toBe(a);
    // An exec: a new program and argv.
    p.exe = '/usr/bin/id';
    p.argv = ['id'];
    const b = processInput(p);
    expect(b).not.toBe(a);
    expect(b).toMatchObject({ exe: '/usr/bin/id', argv: ['id'] });
    // Capabilities dropped, a new comm, a setuid: each is seen.
    p.capEffective = 0n;
    expect(processInput(p).capEffective).toEqual([]);
    p.comm = 'id';
    expect(processInput(p).comm).toBe('id');
    p.euid = 1000;
    expect(processInput(p).euid).toBe(1000);
    // Another process with equal facts gets its own input.
    expect(processInput(proc())).not.toBe(a);
  });

  it('marked inputs in a detection chain encode to what schema.encodeEvent encodes, the first time and from kept bytes', () => {
    const child = proc({ tgid: 801, ppid: 800, parentStartNs: 7n });
    const parent = proc();
    const ev = (seq: number): EventInput => ({
      seq,
      ...head,
      detection: { ruleId: 'r', chain: [processInput(child), processInput(parent)] },
    });
    const plain = (seq: number): EventInput => ({
      seq,
      ...head,
      detection: { ruleId: 'r', chain: [{ ...processInput(child) }, { ...processInput(parent) }] },
    });
    for (let seq = 1; seq <= 3; seq++) expect(codec.encode(ev(seq))).toEqual(schema.encodeEvent(plain(seq)));
    expect(codec.decode(codec.encode(ev(4))).detection?.chain?.map((x) => x.pid)).toEqual([801, 800]);
  });
});
