import { describe, expect, it } from 'vitest';
import * as protobuf from 'protobufjs';
import { compileEventCodec, JsonOut, type JsonHead } from '../../src/proto/codec';
import { syntheticEvent } from '../support/events';
import { loadEventSchema, SchemaError, type EventInput } from '../../src/proto/schema';

const schema = loadEventSchema();
const codec = compileEventCodec(schema);
const ID = 'b7bff6a1f2cd5fc975b0280d300b031a39fd483f4d1e954e4e5e25f374bb0d00';
const head = { timeUnixNano: 1795923700581988444n, node: 'node-a', bootId: '3f1e2d4c-0000-4000-8000-000000000001' };

const events: EventInput[] = [
  {
    seq: 2n ** 64n - 1n,
    ...head,
    containerStarted: {
      container: {
        id: ID,
        runtime: 'DOCKER',
        name: 'web',
        image: 'nginx:1.27',
        initPid: 5324,
        cgroupPath: `/docker/${ID}`,
        privileged: false,
        existing: false,
        capabilities: [],
        hostNamespaces: ['USER', 'CGROUP', 'NAMESPACE_UNSPECIFIED' as never],
        mounts: [{ source: '/', destination: '/host', readOnly: false, type: 'bind' }, {}],
        labels: { app: 'cw', empty: '', ünï: 'cødé ✓' },
        restartPolicy: 'on-failure:3',
        podName: '',
        cgroupId: 9007199254740993n,
        createdTimeUnixNano: '1795923700000000000',
      },
      process: { pid: 5324, startTimeNs: '273410000000', argv: ['/bin/sleep', '300', ''], uid: 0, euid: 0, ppid: 5300, comm: 'sleep' },
      exitCode: 0,
    },
  },
  { seq: 1, ...head, sensorReady: { version: '0.1.0', kernelRelease: '6.1.0', existingContainers: 0, hooks: ['a', 'b'] } },
  { seq: 3, ...head, containerExited: { container: { id: 'x', runtime: 7 as never }, exitCode: -1, signal: 9 } },
  { seq: 4, ...head, containerExec: { container: {}, process: { pid: 1, exe: 'é'.repeat(200) }, parent: { argv: ['x'.repeat(20000)] } } },
  {
    seq: 5,
    ...head,
    detection: {
      ruleId: 'escape.host-ns-setns',
      techniques: ['T1611'],
      severity: 'HIGH',
      message: 'setns into host pid ns',
      container: { id: ID },
      chain: [{ pid: 10, startTimeNs: 5 }, { pid: 1 }],
      attributes: { ns: 'pid', path: '/proc/1/ns/pid' },
    },
  },
  { seq: 6, ...head, sensorStats: { eventsEmitted: 0, ringBufferDrops: 12, counters: { 'sink.grpc.dropped': 0n, big: 2n ** 63n } } },
  { seq: 7, ...head, containerCreated: {} },
  { seq: 8, timeUnixNano: 0, node: '', containerCreated: { container: { createdTimeUnixNano: 0 } } },
  { seq: 9, ...head, detection: { attributes: { b: '1', '10': 'x', '2': 'y', a: '"quoted"\n' }, message: '\u0000 ctl \t' } },
];

describe('event codec', () => {
  it('encodes byte for byte what schema.encodeEvent encodes', () => {
    for (const ev of events) expect(codec.encode(ev).toString('hex')).toBe(Buffer.from(schema.encodeEvent(ev)).toString('hex'));
  });

  it('decodes to what schema.decodeEvent returns, and to toJsonLine', () => {
    for (const ev of events) {
      const bytes = schema.encodeEvent(ev);
      expect(JSON.stringify(codec.decode(bytes))).toBe(JSON.stringify(schema.decodeEvent(bytes)));
      expect(codec.jsonLine(bytes)).toBe(schema.toJsonLine(ev));
      const h = codec.head(bytes);
      expect([h.seq, h.node, h.bootId]).toEqual([BigInt(ev.seq!), ev.node ?? '', ev.bootId ?? '']);
    }
  });

  it('writes JSON lines straight from the bytes, equal to jsonLine, whatever the field order', () => {
    const out = new JsonOut(16);
    const head: JsonHead = { seq: undefined, timeUnixNano: undefined, node: '', bootId: '', kind: undefined };
    const lines: string[] = [];
    const check = (bytes: Uint8Array) => {
      const start = out.pos;
      codec.writeJson(bytes, out, head);
      const obj = codec.decode(bytes) as Record<string, unknown>;
      expect(out.buf.toString('utf8', start, out.pos)).toBe(JSON.stringify(obj));
      expect(head).toEqual({
        seq: obj.seq,
        timeUnixNano: obj.timeUnixNano,
        node: obj.node ?? '',
        bootId: obj.bootId ?? '',
        kind: schema.Event.oneofs.kind!.oneof.find((k) => obj[k] !== undefined),
      });
      lines.push(JSON.stringify(obj));
    };
    for (const ev of events) check(schema.encodeEvent(ev));
    for (let i = 1; i <= 200; i++) check(codec.encode(syntheticEvent(i, 'r', 'node-a', 'boot-1')));
    // Text that needs escapes or is not ASCII, defaults written explicitly, unknown fields.
    check(codec.encode({ seq: 3, node: 'n\u00e9\u2028', containerExec: { process: { comm: 'a"b\\c\u0001\u007f', argv: ['', 'x\ny'] } } }));
    const w = schema.Event.encode(
      schema.Event.fromObject({ seq: '9', node: '', containerCreated: { container: { existing: false, initPid: 0 } } }),
    );
    w.uint32((900 << 3) | 2).string('unknown');
    check(w.finish());
    // Fields in reverse order, a singular field twice, two members of the oneof: the last wins.
    const f = (id: number, wt: number) => (id << 3) | wt;
    const rw = protobuf.Writer.create();
    rw.uint32(f(3, 2)).string('node-b').uint32(f(1, 0)).uint64(7).uint32(f(1, 0)).uint64(8);
    rw.uint32(f(11, 2)).fork().ldelim().uint32(f(12, 2)).fork().ldelim();
    check(rw.finish());
    expect(out.buf.toString('utf8', 0, out.pos)).toBe(lines.join(''));
    expect(() => codec.writeJson(Buffer.from([0x0a, 0xff]), out, head)).toThrow(SchemaError);
  });

  it('reads defaults another encoder wrote explicitly, and skips unknown fields', () => {
    const msg = schema.Event.fromObject({ seq: '9', node: '', containerCreated: { container: { existing: false, initPid: 0 } } });
    const w = schema.Event.encode(msg);
    w.uint32((900 << 3) | 2).string('unknown');
    const bytes = w.finish();
    expect(codec.decode(bytes)).toEqual({ seq: '9', containerCreated: { container: {} } });
  });

  it('refuses what checkInput refuses, with a SchemaError naming the field', () => {
    const bad: [unknown, RegExp][] = [
      [{ seq: 'abc' }, /Event\.seq: integer/],
      [{ seq: -1 }, /uint64 out of range/],
      [{ seq: 2n ** 64n }, /uint64 out of range/],
      [{ seq: 1.5 }, /integer/],
      [{ bogus: 1 }, /Event\.bogus: no such field/],
      [{ containerStarted: { container: { runtime: 'NOPE' } } }, /runtime: unknown/],
      [{ containerStarted: { container: { initPid: -1 } } }, /initPid: uint32 expected/],
      [{ containerStarted: { container: { labels: { a: 1 } } } }, /labels\["a"\]: string expected/],
      [{ containerStarted: { process: { argv: 'sh' } } }, /argv: array expected/],
      [{ containerStarted: {}, containerExited: {} }, /more than one/],
      [{ containerStarted: 5 }, /object expected/],
      [null, /object expected/],
    ];
    for (const [input, re] of bad) {
      expect(() => schema.encodeEvent(input as EventInput)).toThrow(SchemaError);
      expect(() => codec.encode(input as EventInput)).toThrow(re);
      expect(() => codec.encode(input as EventInput)).toThrow(SchemaError);
    }
  });

  it('refuses truncated or garbled bytes with a SchemaError', () => {
    const good = codec.encode(events[0]!);
    for (const bytes of [
      good.subarray(0, good.length - 3),
      Buffer.from([0x0a, 0xff]),
      Buffer.from([0x08]),
      Buffer.from([0x0f, 1]),
      Buffer.from([0x52, 5, 1]),
    ]) {
      expect(() => codec.decode(bytes)).toThrow(SchemaError);
      expect(() => codec.jsonLine(bytes)).toThrow(SchemaError);
    }
  });
});
