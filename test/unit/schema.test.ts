import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import {
  decodeEvent,
  encodeEvent,
  EVENTS_PROTO_REL,
  findPackageRoot,
  loadEventSchema,
  SchemaError,
  toJsonLine,
  type EventInput,
} from '../../src/proto/schema';

const PKG = path.join(__dirname, '../..');
const ID = 'b7bff6a1f2cd5fc975b0280d300b031a39fd483f4d1e954e4e5e25f374bb0d00';

const started: EventInput = {
  seq: 2n ** 64n - 1n, // above 2^53: must survive exactly
  timeUnixNano: 1795923700581988444n,
  node: 'node-a',
  bootId: '3f1e2d4c-0000-4000-8000-000000000001',
  containerStarted: {
    container: {
      id: ID,
      runtime: 'DOCKER',
      name: 'cw-meta-docker',
      image: 'localhost/busybox:latest',
      imageDigest: 'sha256:06dc5170546f6dafb9ce9a1e19d731b514875a137487c283b6cf13d39ac12f13',
      initPid: 5324,
      cgroupPath: `/docker/${ID}`,
      privileged: false, // default: omitted
      existing: false, // default: omitted
      capabilities: [],
      hostNamespaces: ['USER', 'CGROUP'],
      mounts: [{ source: '/', destination: '/host', readOnly: false, type: 'bind' }],
      labels: { app: 'cwmeta' },
      restartPolicy: 'on-failure:3',
      podName: '',
      cgroupId: 9007199254740993n, // 2^53 + 1
    },
    process: { pid: 5324, startTimeNs: '273410000000', argv: ['/bin/sleep', '300'], uid: 0, euid: 0, ppid: 5300, comm: 'sleep' },
    exitCode: 0,
  },
};

// Written by hand from the proto3 JSON mapping, not produced by the code under test.
const STARTED_JSON =
  '{"seq":"18446744073709551615","timeUnixNano":"1795923700581988444","node":"node-a",' +
  '"bootId":"3f1e2d4c-0000-4000-8000-000000000001","containerStarted":{"container":{' +
  `"id":"${ID}","runtime":"DOCKER","name":"cw-meta-docker","image":"localhost/busybox:latest",` +
  '"imageDigest":"sha256:06dc5170546f6dafb9ce9a1e19d731b514875a137487c283b6cf13d39ac12f13",' +
  `"initPid":5324,"cgroupPath":"/docker/${ID}","hostNamespaces":["USER","CGROUP"],` +
  '"mounts":[{"source":"/","destination":"/host","type":"bind"}],"labels":{"app":"cwmeta"},' +
  '"restartPolicy":"on-failure:3","cgroupId":"9007199254740993"},' +
  '"process":{"pid":5324,"startTimeNs":"273410000000","argv":["/bin/sleep","300"],"ppid":5300,"comm":"sleep"}}}';

describe('proto3 canonical JSON', () => {
  it('lowerCamelCase names, enum names, 64-bit ints as exact strings, defaults omitted', () => {
    expect(JSON.parse(toJsonLine(started))).toEqual(JSON.parse(STARTED_JSON));
    expect(toJsonLine(started)).not.toContain('\n');
  });

  it('keeps a uint64 above 2^53 exact through binary and back', () => {
    const back = decodeEvent(encodeEvent(started));
    expect(back.seq).toBe('18446744073709551615');
    expect((back.containerStarted as { container: { cgroupId: string } }).container.cgroupId).toBe('9007199254740993');
    expect(JSON.stringify(back)).toBe(toJsonLine(started));
    // A number that is not a safe integer would already have lost precision: 2^53 + 1 as a JS number is 2^53.
    // eslint-disable-next-line no-loss-of-precision -- the point of the case
    expect(JSON.parse(toJsonLine({ seq: 9007199254740993 })).seq).toBe('9007199254740992');
    expect(JSON.parse(toJsonLine({ seq: '9007199254740993' })).seq).toBe('9007199254740993');
  });

  it('an empty message in the oneof is still emitted (it has presence); scalar defaults are not', () => {
    expect(toJsonLine({ sensorStats: {} })).toBe('{"sensorStats":{}}');
    expect(
      toJsonLine({
        seq: 0,
        node: '',
        containerExited: { exitCode: 0, container: { runtime: 'RUNTIME_UNSPECIFIED', existing: false, labels: {} } },
      }),
    ).toBe('{"containerExited":{"container":{}}}');
    expect(toJsonLine({ containerExited: { exitCode: -1, signal: 9 } })).toBe('{"containerExited":{"exitCode":-1,"signal":9}}');
  });

  it('enums (also repeated) and maps of uint64 follow the mapping', () => {
    const line = toJsonLine({
      detection: {
        ruleId: 'escape.host-ns',
        techniques: ['T1611'],
        severity: 'HIGH',
        chain: [{ pid: 1 }, { pid: 2 }],
        attributes: { ns: 'net' },
      },
    });
    expect(JSON.parse(line)).toEqual({
      detection: {
        ruleId: 'escape.host-ns',
        techniques: ['T1611'],
        severity: 'HIGH',
        chain: [{ pid: 1 }, { pid: 2 }],
        attributes: { ns: 'net' },
      },
    });
    expect(JSON.parse(toJsonLine({ sensorStats: { ringBufferDrops: 3n, counters: { 'drops.cpu0': 2n ** 63n, zero: 0 } } }))).toEqual({
      sensorStats: { ringBufferDrops: '3', counters: { 'drops.cpu0': '9223372036854775808', zero: '0' } },
    });
  });

  it('refuses an event with two kinds, or a value that does not fit', () => {
    expect(() => toJsonLine({ sensorStats: {}, sensorReady: {} })).toThrow(SchemaError);
    expect(() => toJsonLine({ containerStarted: { container: 'x' as never } })).toThrow(SchemaError);
    expect(() => toJsonLine({ detection: { severity: 'APOCALYPTIC' as never } })).toThrow(/unknown Severity "APOCALYPTIC"/);
    expect(() => toJsonLine({ detection: { severity: 'toString' as never } })).toThrow(/unknown Severity/);
    // protobufjs's fromObject alone would coerce these silently
    expect(() => toJsonLine({ containerStarted: { process: { pid: 'abc' as never } } })).toThrow(/pid: uint32 expected/);
    expect(() => toJsonLine({ containerStarted: { process: { pid: -1 } } })).toThrow(SchemaError);
    expect(() => toJsonLine({ seq: -1n })).toThrow(/uint64 out of range/);
    expect(() => toJsonLine({ seq: 2n ** 64n })).toThrow(/out of range/);
    expect(() => toJsonLine({ seq: '12abc' })).toThrow(/integer/);
    expect(() => toJsonLine({ containerStarted: { container: { privileged: 'yes' as never } } })).toThrow(/boolean expected/);
    expect(() => toJsonLine({ containerStarted: { container: { labels: { a: 1 as never } } } })).toThrow(/labels\["a"\]/);
    expect(() => toJsonLine({ nodeName: 'x' } as never)).toThrow(/no such field/);
  });
});

describe('binary', () => {
  it('carries no default values on the wire', () => {
    expect(encodeEvent({ seq: 0, node: '', bootId: '' }).length).toBe(0);
    // field 13 (container_exited), wire type 2, length 0: the exit code 0 is not sent
    expect(Array.from(encodeEvent({ containerExited: { exitCode: 0 } }))).toEqual([(13 << 3) | 2, 0]);
  });

  it('is readable by a schema loaded independently (same field numbers)', () => {
    const other = new protobuf.Root().loadSync(path.join(PKG, EVENTS_PROTO_REL), { keepCase: true }).lookupType('ctrwatch.v1.Event');
    const msg = other.decode(encodeEvent(started)) as unknown as {
      seq: { toString(): string };
      container_started: { container: { init_pid: number } };
    };
    expect(msg.seq.toString()).toBe('18446744073709551615');
    expect(msg.container_started.container.init_pid).toBe(5324);
  });

  it('decoding garbage is a SchemaError, not a crash', () => {
    // field 3 (node, a string) claims 16 bytes, 1 follows
    expect(() => decodeEvent(new Uint8Array([0x1a, 0x10, 0x41]))).toThrow(SchemaError);
    expect(() => decodeEvent(new Uint8Array([0xff]))).toThrow(SchemaError);
  });
});

describe('the .proto file', () => {
  const snake = new protobuf.Root().loadSync(path.join(PKG, EVENTS_PROTO_REL), { keepCase: true });
  snake.resolveAll();
  const pkg = snake.lookup('ctrwatch.v1') as protobuf.Namespace;
  const types = pkg.nestedArray.filter((n): n is protobuf.Type => n instanceof protobuf.Type);
  const enums = pkg.nestedArray.filter((n): n is protobuf.Enum => n instanceof protobuf.Enum);

  it("every JSON name is protoc's lowerCamelCase of the field name", () => {
    const camel = loadEventSchema(PKG).root;
    // protoc's ToJsonName: drop each '_' and upper-case the next character.
    const toJsonName = (s: string) => s.replace(/_(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''));
    for (const t of types) {
      const ct = camel.lookupType(`ctrwatch.v1.${t.name}`);
      expect(ct.fieldsArray.map((f) => f.name)).toEqual(t.fieldsArray.map((f) => toJsonName(f.name)));
    }
  });

  it('enum value names are unique across the package and every enum starts at *_UNSPECIFIED = 0', () => {
    const names = enums.flatMap((e) => Object.keys(e.values));
    expect(new Set(names).size).toBe(names.length);
    for (const e of enums) expect(e.valuesById[0]).toMatch(/_UNSPECIFIED$/);
    expect(Object.keys(snake.lookupEnum('ctrwatch.v1.Runtime').values)).toEqual([
      'RUNTIME_UNSPECIFIED',
      'RUNC',
      'CRUN',
      'CONTAINERD',
      'DOCKER',
      'PODMAN',
      'CRIO',
      'UNKNOWN',
    ]);
  });

  it('every message reserves 1000-1999 for site-local fields', () => {
    for (const t of types) expect(t.reserved, t.name).toContainEqual([1000, 1999]);
  });

  it('the Event kinds are the ones the design names', () => {
    const ev = snake.lookupType('ctrwatch.v1.Event');
    expect(ev.oneofs.kind.oneof).toEqual([
      'sensor_ready',
      'container_created',
      'container_started',
      'container_exited',
      'container_exec',
      'detection',
      'sensor_stats',
      'sensor_silent',
    ]);
  });
});

describe('finding the proto at runtime', () => {
  it('from src/proto (vitest) and from dist/src/proto (after tsc)', () => {
    expect(findPackageRoot(path.join(PKG, 'src', 'proto'))).toBe(PKG);
    expect(findPackageRoot(path.join(PKG, 'dist', 'src', 'proto'))).toBe(PKG);
    expect(fs.existsSync(path.join(findPackageRoot(), EVENTS_PROTO_REL))).toBe(true);
  });

  it('says where it looked when the proto is missing', () => {
    expect(() => findPackageRoot('/')).toThrow(/events.proto not found above \//);
  });
});
