// The output schema at runtime: proto/ctrwatch/v1/events.proto loaded with protobufjs (no
// generated code), binary encode/decode, and the proto3 canonical JSON line.
//
// protobufjs's toObject options alone do not give canonical JSON: with {longs: String, enums:
// String, bytes: String, json: true} names, enums and 64-bit ints are right, but any field set
// explicitly to its default (fromObject keeps `existing: false`, and the decoder keeps a zero
// that was on the wire) is still emitted, and `oneofs: true` would add a virtual "kind" key.
// So: oneofs stays off, and pruneDefaults drops scalar fields at their default (except oneof
// members, which have presence), empty lists and empty maps. The same pruning runs before
// encoding, so the wire form carries no defaults either.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { unpackedRoot } from '../paths';

export const EVENTS_PROTO_REL = path.join('proto', 'ctrwatch', 'v1', 'events.proto');

/** 64-bit fields take a bigint, a safe integer, or a decimal string; JSON and decode give strings. */
export type U64 = bigint | number | string;

export type RuntimeName = 'RUNTIME_UNSPECIFIED' | 'RUNC' | 'CRUN' | 'CONTAINERD' | 'DOCKER' | 'PODMAN' | 'CRIO' | 'UNKNOWN';
export type NamespaceName = 'PID' | 'NET' | 'IPC' | 'UTS' | 'MNT' | 'CGROUP' | 'USER';
export type SeverityName = 'SEVERITY_UNSPECIFIED' | 'INFO' | 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';

export interface MountInput {
  source?: string;
  destination?: string;
  readOnly?: boolean;
  type?: string;
}

export interface ContainerInput {
  id?: string;
  runtime?: RuntimeName;
  name?: string;
  image?: string;
  imageDigest?: string;
  initPid?: number;
  cgroupPath?: string;
  bundle?: string;
  user?: string;
  privileged?: boolean;
  capabilities?: string[];
  hostNamespaces?: NamespaceName[];
  mounts?: MountInput[];
  labels?: Record<string, string>;
  existing?: boolean;
  podName?: string;
  podNamespace?: string;
  restartPolicy?: string;
  podUid?: string;
  cgroupId?: U64;
  createdTimeUnixNano?: U64;
  pod?: PodInput;
}

export interface PodInput {
  name?: string;
  namespace?: string;
  uid?: string;
  sandboxId?: string;
  containerName?: string;
  sandbox?: boolean;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  labelsSource?: string;
}

export interface ProcessInput {
  pid?: number;
  startTimeNs?: U64;
  exe?: string;
  argv?: string[];
  uid?: number;
  euid?: number;
  capEffective?: string[];
  ppid?: number;
  comm?: string;
  gid?: number;
  egid?: number;
  parentStartTimeNs?: U64;
}

export interface ContainerEventInput {
  container?: ContainerInput;
  process?: ProcessInput;
  exitCode?: number;
  signal?: number;
}

export interface EventInput {
  seq?: U64;
  timeUnixNano?: U64;
  node?: string;
  bootId?: string;
  // Exactly one of these:
  sensorReady?: { version?: string; kernelRelease?: string; existingContainers?: number; hooks?: string[] };
  containerCreated?: ContainerEventInput;
  containerStarted?: ContainerEventInput;
  containerExited?: ContainerEventInput;
  containerExec?: { container?: ContainerInput; process?: ProcessInput; parent?: ProcessInput };
  detection?: {
    ruleId?: string;
    techniques?: string[];
    severity?: SeverityName;
    message?: string;
    container?: ContainerInput;
    chain?: ProcessInput[];
    attributes?: Record<string, string>;
    containment?: {
      outcome?: 'OUTCOME_UNSPECIFIED' | 'KILLED' | 'WOULD_KILL' | 'KILL_FAILED' | 'SPARED' | 'DENIED';
      path?: 'PATH_UNSPECIFIED' | 'KERNEL' | 'USER_SPACE';
      reason?: string;
    };
  };
  sensorStats?: {
    eventsEmitted?: U64;
    ringBufferDrops?: U64;
    kernelReadErrors?: U64;
    recordsDecoded?: U64;
    enrichFailures?: U64;
    containersTracked?: U64;
    processesTracked?: U64;
    sinkDrops?: U64;
    detections?: U64;
    counters?: Record<string, U64>;
  };
  /** Written by the collector when a sensor's stats stop. */
  sensorSilent?: { instanceId?: string; lastStatsUnixNano?: U64; intervalMs?: U64; silentForMs?: U64 };
}

/** An event in canonical JSON form (what toJsonLine prints, what decodeEvent returns). */
export type CanonicalEvent = Record<string, unknown>;

export class SchemaError extends Error {
  override readonly name = 'SchemaError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The package root: the nearest directory above `from` holding the proto file (src/proto/ under vitest, dist/src/proto/ after tsc). */
export function findPackageRoot(from: string = __dirname): string {
  const unpacked = unpackedRoot();
  if (unpacked && from === __dirname) return unpacked;
  let dir = from;
  for (let i = 0; i < 8; i++) {
    if (fs.existsSync(path.join(dir, EVENTS_PROTO_REL))) return dir;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new SchemaError(`${EVENTS_PROTO_REL} not found above ${from}`);
}

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, bytes: String, json: true };

function isDefaultScalar(field: protobuf.Field, v: unknown): boolean {
  if (field.resolvedType instanceof protobuf.Enum) return v === 0 || v === field.resolvedType.valuesById[0];
  if (LONG_TYPES.has(field.type)) return v === '0' || v === 0;
  switch (field.type) {
    case 'bool':
      return v === false;
    case 'string':
    case 'bytes':
      return v === '';
    default:
      return v === 0;
  }
}

/** Drop what canonical JSON omits, in place, walking the message's reflection. */
export function pruneDefaults(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  for (const field of type.fieldsArray) {
    const key = field.name;
    const v = obj[key];
    if (v === undefined) continue;
    if (v === null) {
      delete obj[key];
      continue;
    }
    const sub = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    if (field.map) {
      const m = v as Record<string, unknown>;
      if (Object.keys(m).length === 0) delete obj[key];
      else if (sub) for (const k of Object.keys(m)) pruneDefaults(sub, m[k] as Record<string, unknown>);
    } else if (field.repeated) {
      const a = v as unknown[];
      if (a.length === 0) delete obj[key];
      else if (sub) for (const x of a) pruneDefaults(sub, x as Record<string, unknown>);
    } else if (sub) {
      pruneDefaults(sub, v as Record<string, unknown>);
    } else if (!field.partOf && isDefaultScalar(field, v)) {
      delete obj[key];
    }
  }
  return obj;
}

const INT32_RANGE: Record<string, [number, number]> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  sint32: [-(2 ** 31), 2 ** 31 - 1],
  sfixed32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  fixed32: [0, 2 ** 32 - 1],
};

/** Why `v` cannot be the value of scalar or enum `field`, or undefined when it can. */
function scalarProblem(field: protobuf.Field, v: unknown): string | undefined {
  if (field.resolvedType instanceof protobuf.Enum) {
    if (typeof v === 'string')
      return Object.prototype.hasOwnProperty.call(field.resolvedType.values, v)
        ? undefined
        : `unknown ${field.resolvedType.name} ${JSON.stringify(v)}`;
    return Number.isInteger(v) ? undefined : 'enum name expected';
  }
  if (LONG_TYPES.has(field.type)) {
    const unsigned = field.type === 'uint64' || field.type === 'fixed64';
    const big =
      typeof v === 'bigint'
        ? v
        : typeof v === 'number' && Number.isInteger(v)
          ? BigInt(v)
          : typeof v === 'string' && /^-?\d{1,20}$/.test(v)
            ? BigInt(v)
            : undefined;
    if (big === undefined) return 'integer (bigint, number or decimal string) expected';
    const [lo, hi] = unsigned ? [0n, 2n ** 64n - 1n] : [-(2n ** 63n), 2n ** 63n - 1n];
    return big < lo || big > hi ? `${field.type} out of range` : undefined;
  }
  const range = INT32_RANGE[field.type];
  if (range) return Number.isInteger(v) && (v as number) >= range[0] && (v as number) <= range[1] ? undefined : `${field.type} expected`;
  switch (field.type) {
    case 'bool':
      return typeof v === 'boolean' ? undefined : 'boolean expected';
    case 'string':
      return typeof v === 'string' ? undefined : 'string expected';
    case 'double':
    case 'float':
      return typeof v === 'number' ? undefined : 'number expected';
    default:
      return undefined; // bytes: left to protobufjs
  }
}

/**
 * Check an input object against the schema before protobufjs's fromObject, which coerces
 * silently ("abc" into a uint32 becomes 0, an unknown enum name disappears). Throws SchemaError.
 */
export function checkInput(type: protobuf.Type, obj: unknown, where = type.name): void {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new SchemaError(`${where}: object expected`);
  const rec = obj as Record<string, unknown>;
  for (const key of Object.keys(rec)) {
    const field = type.fields[key];
    if (!field) throw new SchemaError(`${where}.${key}: no such field`);
    const v = rec[key];
    if (v === undefined || v === null) continue;
    const sub = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    const one = (x: unknown, at: string) => {
      if (sub) return checkInput(sub, x, at);
      const problem = scalarProblem(field, x);
      if (problem) throw new SchemaError(`${at}: ${problem}`);
    };
    if (field.map) {
      if (typeof v !== 'object' || Array.isArray(v)) throw new SchemaError(`${where}.${key}: map (object) expected`);
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) one(x, `${where}.${key}[${JSON.stringify(k)}]`);
    } else if (field.repeated) {
      if (!Array.isArray(v)) throw new SchemaError(`${where}.${key}: array expected`);
      v.forEach((x, i) => one(x, `${where}.${key}[${i}]`));
    } else one(v, `${where}.${key}`);
  }
}

/** Replace bigints by decimal strings (protobufjs's fromObject takes strings for 64-bit fields, not bigints). */
function bigintsToStrings(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map(bigintsToStrings);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = bigintsToStrings(x);
    return out;
  }
  return v;
}

export interface EventSchema {
  readonly root: protobuf.Root;
  readonly Event: protobuf.Type;
  encodeEvent(obj: EventInput): Uint8Array;
  decodeEvent(bytes: Uint8Array): CanonicalEvent;
  toCanonical(obj: EventInput): CanonicalEvent;
  toJsonLine(obj: EventInput): string;
}

/** Load events.proto from `packageRoot` (found from this file's location by default). */
export function loadEventSchema(packageRoot: string = findPackageRoot()): EventSchema {
  const root = new protobuf.Root();
  // keepCase false (the default): field names become lowerCamelCase, which is proto3 JSON's naming.
  root.loadSync(path.join(packageRoot, EVENTS_PROTO_REL), { keepCase: false });
  root.resolveAll();
  const Event = root.lookupType('ctrwatch.v1.Event');

  const toMessage = (obj: EventInput): protobuf.Message => {
    checkInput(Event, obj);
    let msg: protobuf.Message;
    try {
      msg = Event.fromObject(bigintsToStrings(obj) as Record<string, unknown>);
    } catch (err) {
      throw new SchemaError(`event does not fit the schema: ${(err as Error).message}`, { cause: err });
    }
    const problem = Event.verify(msg);
    if (problem) throw new SchemaError(`event does not fit the schema: ${problem}`);
    return msg;
  };
  const canonicalOf = (msg: protobuf.Message): CanonicalEvent => pruneDefaults(Event, Event.toObject(msg, TO_OBJECT));
  const toCanonical = (obj: EventInput): CanonicalEvent => canonicalOf(toMessage(obj));

  return {
    root,
    Event,
    toCanonical,
    encodeEvent: (obj) => Event.encode(Event.fromObject(toCanonical(obj))).finish(),
    decodeEvent: (bytes) => {
      try {
        return canonicalOf(Event.decode(bytes));
      } catch (err) {
        throw new SchemaError(`not a ctrwatch.v1.Event: ${(err as Error).message}`, { cause: err });
      }
    },
    toJsonLine: (obj) => JSON.stringify(toCanonical(obj)),
  };
}

// The default schema is loaded once, on first use, and never changes: a constant, not state.
let defaultSchema: EventSchema | undefined;
function schema(): EventSchema {
  defaultSchema ??= loadEventSchema();
  return defaultSchema;
}

export function encodeEvent(obj: EventInput): Uint8Array {
  return schema().encodeEvent(obj);
}

export function decodeEvent(bytes: Uint8Array): CanonicalEvent {
  return schema().decodeEvent(bytes);
}

/** One line of proto3 canonical JSON (no trailing newline). */
export function toJsonLine(obj: EventInput): string {
  return schema().toJsonLine(obj);
}
