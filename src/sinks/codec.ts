// A fast codec for ctrwatch.v1.Event, compiled once from the schema's reflection.
//
// Why not schema.encodeEvent: it validates, converts, verifies, prunes and converts again
// (~90 µs an event here), which caps a sink at ~11k events/s. This codec walks the input once:
// it checks every value with the same rules as schema.checkInput, drops proto3 defaults the way
// pruneDefaults does, and writes the wire form directly, byte for byte what encodeEvent writes
// (test/unit/sink-codec.test.ts holds it to that). The decoder goes the other way, from bytes
// straight to the canonical JSON object that schema.decodeEvent returns, for the stdout sink
// and the collector.

import * as protobuf from 'protobufjs';
import { SchemaError, type CanonicalEvent, type EventInput, type EventSchema } from '../proto/schema';

type Scalar = 'string' | 'bool' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'fixed64';
type Kind = Scalar | 'enum' | 'message';

interface FieldPlan {
  name: string;
  /** Position in TypePlan.fields. */
  index: number;
  /** Positions of the other members of its oneof. */
  siblings: number[];
  id: number;
  kind: Kind;
  repeated: boolean;
  packed: boolean;
  map: boolean;
  keyKind: Scalar;
  oneof?: string;
  sub?: TypePlan;
  enumValues?: Record<string, number>;
  enumNames?: Record<number, string>;
}

interface TypePlan {
  name: string;
  /** Declaration order (the order of keys in canonical JSON). */
  fields: FieldPlan[];
  byName: Map<string, FieldPlan>;
  byId: Map<number, FieldPlan>;
  /** Field-number order (the order protobufjs writes). */
  encodeOrder: FieldPlan[];
  oneofs: string[][];
}

const SCALARS = new Set<string>(['string', 'bool', 'int32', 'uint32', 'int64', 'uint64', 'fixed64']);
const LONGS = new Set<string>(['int64', 'uint64', 'fixed64']);
const U64_MAX = 2n ** 64n - 1n;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

export class CodecError extends SchemaError {}

function wireType(kind: Kind): number {
  if (kind === 'fixed64') return 1;
  if (kind === 'string' || kind === 'message') return 2;
  return 0;
}

function compile(type: protobuf.Type, seen: Map<string, TypePlan>): TypePlan {
  const known = seen.get(type.fullName);
  if (known) return known;
  const plan: TypePlan = { name: type.name, fields: [], byName: new Map(), byId: new Map(), encodeOrder: [], oneofs: [] };
  seen.set(type.fullName, plan);
  for (const f of type.fieldsArray) {
    f.resolve();
    let kind: Kind;
    let sub: TypePlan | undefined;
    let enumValues: Record<string, number> | undefined;
    let enumNames: Record<number, string> | undefined;
    if (f.resolvedType instanceof protobuf.Type) {
      kind = 'message';
      sub = compile(f.resolvedType, seen);
    } else if (f.resolvedType instanceof protobuf.Enum) {
      kind = 'enum';
      enumValues = f.resolvedType.values;
      enumNames = f.resolvedType.valuesById;
    } else if (SCALARS.has(f.type)) {
      kind = f.type as Scalar;
    } else {
      throw new CodecError(`codec: ${type.name}.${f.name}: type ${f.type} not supported`);
    }
    const isMap = f instanceof protobuf.MapField;
    const keyKind = (isMap ? (f as protobuf.MapField).keyType : 'string') as Scalar;
    if (isMap && keyKind !== 'string') throw new CodecError(`codec: ${type.name}.${f.name}: map key ${keyKind} not supported`);
    const fp: FieldPlan = {
      name: f.name, index: plan.fields.length, siblings: [], id: f.id, kind, sub, enumValues, enumNames, keyKind, map: isMap,
      repeated: f.repeated && !isMap,
      packed: f.repeated && !isMap && f.packed && kind !== 'string' && kind !== 'message',
      oneof: f.partOf?.name,
    };
    plan.fields.push(fp);
    plan.byName.set(fp.name, fp);
    plan.byId.set(fp.id, fp);
  }
  for (const f of plan.fields) if (f.oneof) f.siblings = plan.fields.filter((o) => o !== f && o.oneof === f.oneof).map((o) => o.index);
  plan.encodeOrder = [...plan.fields].sort((a, b) => a.id - b.id);
  plan.oneofs = type.oneofsArray.map((o) => o.oneof);
  return plan;
}

// ---- encoding -------------------------------------------------------------------------------

/** A growable scratch buffer, reused from event to event. */
class Out {
  buf = Buffer.allocUnsafe(4096);
  pos = 0;
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  varint(v: number): void {
    this.ensure(5);
    const b = this.buf;
    while (v > 127) {
      b[this.pos++] = (v & 127) | 128;
      v >>>= 7;
    }
    b[this.pos++] = v;
  }
  varint64(lo: number, hi: number): void {
    this.ensure(10);
    const b = this.buf;
    while (hi) {
      b[this.pos++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    while (lo > 127) {
      b[this.pos++] = (lo & 127) | 128;
      lo >>>= 7;
    }
    b[this.pos++] = lo;
  }
  fixed64(lo: number, hi: number): void {
    this.ensure(8);
    this.buf.writeUInt32LE(lo, this.pos);
    this.buf.writeUInt32LE(hi, this.pos + 4);
    this.pos += 8;
  }
  string(s: string): void {
    const n = s.length;
    if (n < 128) {
      this.ensure(n + 1);
      const b = this.buf;
      const start = this.pos;
      b[start] = n;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 127) break;
        b[start + 1 + i] = c;
      }
      if (i === n) {
        this.pos = start + 1 + n;
        return;
      }
    }
    const len = Buffer.byteLength(s, 'utf8');
    this.varint(len);
    this.ensure(len);
    this.pos += this.buf.write(s, this.pos, len, 'utf8');
  }
  /** Begin a length-delimited body: returns where it starts (one byte reserved for the length). */
  fork(): number {
    this.ensure(1);
    return ++this.pos;
  }
  /** End a body begun at `start`: write its length, moving the body when the length needs more than a byte. */
  ldelim(start: number): void {
    const len = this.pos - start;
    if (len < 128) {
      this.buf[start - 1] = len;
      return;
    }
    let extra = 0;
    for (let v = len >>> 7; v > 0; v >>>= 7) extra++;
    this.ensure(extra);
    this.buf.copyWithin(start + extra, start, this.pos);
    this.pos = start - 1;
    this.varint(len);
    this.pos = start + extra + len;
  }
}

/** Where a value sits, built only when it is wrong: the parent's path, then a field name or an index. */
type Where = { parent: string; key: string | number };
const at = (w: Where) => (typeof w.key === 'number' ? `${w.parent}[${w.key}]` : w.key.startsWith('[') ? `${w.parent}${w.key}` : `${w.parent}.${w.key}`);

function problem(where: Where | string, what: string): never {
  throw new CodecError(`${typeof where === 'string' ? where : at(where)}: ${what}`);
}

/** A 64-bit value as two unsigned 32-bit halves; undefined when it is zero. */
function long64(v: unknown, kind: Kind, where: Where): [number, number] | undefined {
  let big: bigint;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) problem(where, 'integer (bigint, number or decimal string) expected');
    if (v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
      if (v === 0) return undefined;
      return [v >>> 0, Math.floor(v / 4294967296)];
    }
    big = BigInt(v);
  } else if (typeof v === 'bigint') {
    big = v;
  } else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) {
    big = BigInt(v);
  } else {
    return problem(where, 'integer (bigint, number or decimal string) expected');
  }
  const unsigned = kind !== 'int64';
  if (unsigned ? big < 0n || big > U64_MAX : big < I64_MIN || big > I64_MAX) problem(where, `${kind} out of range`);
  if (big === 0n) return undefined;
  const u = BigInt.asUintN(64, big);
  return [Number(u & 0xffffffffn), Number(u >> 32n)];
}

function int32Of(v: unknown, kind: Kind, where: Where): number {
  const ok = typeof v === 'number' && Number.isInteger(v) && (kind === 'uint32' ? v >= 0 && v <= 4294967295 : v >= -2147483648 && v <= 2147483647);
  if (!ok) problem(where, `${kind} expected`);
  return v as number;
}

function enumOf(f: FieldPlan, v: unknown, where: Where): number {
  if (typeof v === 'string') {
    if (!Object.prototype.hasOwnProperty.call(f.enumValues, v)) problem(where, `unknown ${f.name} enum ${JSON.stringify(v)}`);
    return f.enumValues![v]!;
  }
  if (!Number.isInteger(v)) problem(where, 'enum name expected');
  return v as number;
}

function writeInt(out: Out, v: number): void {
  if (v >= 0) out.varint(v);
  else out.varint64(v >>> 0, 0xffffffff);
}

/** Write one scalar or enum value without its tag; `keep` writes defaults too (map entries, oneof members, packed). */
function writeScalar(out: Out, f: FieldPlan, kind: Kind, v: unknown, where: Where, tag: number, keep: boolean): void {
  switch (kind) {
    case 'string':
      if (typeof v !== 'string') problem(where, 'string expected');
      if (v === '' && !keep) return;
      if (tag) out.varint(tag);
      out.string(v);
      return;
    case 'bool':
      if (typeof v !== 'boolean') problem(where, 'boolean expected');
      if (!v && !keep) return;
      if (tag) out.varint(tag);
      out.varint(v ? 1 : 0);
      return;
    case 'int32':
    case 'uint32': {
      const n = int32Of(v, kind, where);
      if (n === 0 && !keep) return;
      if (tag) out.varint(tag);
      if (kind === 'uint32') out.varint(n >>> 0);
      else writeInt(out, n);
      return;
    }
    case 'enum': {
      const n = enumOf(f, v, where);
      if (n === 0 && !keep) return;
      if (tag) out.varint(tag);
      writeInt(out, n);
      return;
    }
    default: {
      const lh = long64(v, kind, where);
      if (!lh && !keep) return;
      if (tag) out.varint(tag);
      const [lo, hi] = lh ?? [0, 0];
      if (kind === 'fixed64') out.fixed64(lo, hi);
      else out.varint64(lo, hi);
    }
  }
}

function encodeMessage(out: Out, plan: TypePlan, obj: unknown, where: string): void {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) problem(where, 'object expected');
  const rec = obj as Record<string, unknown>;
  for (const key in rec) {
    if (!plan.byName.has(key) && Object.prototype.hasOwnProperty.call(rec, key)) problem(`${where}.${key}`, 'no such field');
  }
  if (plan.oneofs.length) {
    for (const members of plan.oneofs) {
      let n = 0;
      for (const m of members) if (rec[m] !== undefined && rec[m] !== null) n++;
      if (n > 1) problem(where, `more than one of ${members.join(', ')}`);
    }
  }
  const w: Where = { parent: where, key: '' };
  for (const f of plan.encodeOrder) {
    const v = rec[f.name];
    if (v === undefined || v === null) continue;
    w.key = f.name;
    if (f.map) encodeMap(out, f, v, w);
    else if (f.repeated) encodeRepeated(out, f, v, w);
    else if (f.kind === 'message') {
      out.varint((f.id << 3) | 2);
      const start = out.fork();
      encodeMessage(out, f.sub!, v, at(w));
      out.ldelim(start);
    } else writeScalar(out, f, f.kind, v, w, (f.id << 3) | wireType(f.kind), f.oneof !== undefined);
  }
}

function encodeRepeated(out: Out, f: FieldPlan, v: unknown, where: Where): void {
  if (!Array.isArray(v)) problem(where, 'array expected');
  if (v.length === 0) return;
  const w: Where = { parent: at(where), key: 0 };
  if (f.packed) {
    out.varint((f.id << 3) | 2);
    const start = out.fork();
    for (let i = 0; i < v.length; i++) {
      w.key = i;
      writeScalar(out, f, f.kind, v[i], w, 0, true);
    }
    out.ldelim(start);
    return;
  }
  const tag = (f.id << 3) | wireType(f.kind);
  for (let i = 0; i < v.length; i++) {
    w.key = i;
    if (f.kind === 'message') {
      out.varint(tag);
      const start = out.fork();
      encodeMessage(out, f.sub!, v[i], at(w));
      out.ldelim(start);
    } else {
      if (v[i] === null || v[i] === undefined) problem(w, `${f.kind} expected`);
      writeScalar(out, f, f.kind, v[i], w, tag, true);
    }
  }
}

function encodeMap(out: Out, f: FieldPlan, v: unknown, where: Where): void {
  if (typeof v !== 'object' || Array.isArray(v)) problem(where, 'map (object) expected');
  const m = v as Record<string, unknown>;
  const w: Where = { parent: at(where), key: '' };
  for (const k of Object.keys(m)) {
    const x = m[k];
    w.key = `[${JSON.stringify(k)}]`;
    if (x === null || x === undefined) problem(w, `${f.kind} expected`);
    out.varint((f.id << 3) | 2);
    const start = out.fork();
    out.varint(10);
    out.string(k);
    if (f.kind === 'message') {
      out.varint(18);
      const s2 = out.fork();
      encodeMessage(out, f.sub!, x, at(w));
      out.ldelim(s2);
    } else writeScalar(out, f, f.kind, x, w, (2 << 3) | wireType(f.kind), true);
    out.ldelim(start);
  }
}

// ---- decoding -------------------------------------------------------------------------------

class In {
  pos: number;
  constructor(readonly buf: Buffer, start: number, readonly end: number) {
    this.pos = start;
  }
  fail(what: string): never {
    throw new CodecError(`not a ctrwatch.v1.Event: ${what} at byte ${this.pos}`);
  }
  varint(): number {
    let v = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++]!;
      if (shift < 28) v |= (b & 127) << shift;
      else if (shift === 28) v |= (b & 15) << 28;
      if (b < 128) return v >>> 0;
      shift += 7;
      if (shift > 63) this.fail('varint too long');
    }
  }
  /** A varint as [lo, hi] unsigned halves. */
  varint64(): [number, number] {
    let lo = 0;
    let hi = 0;
    for (let i = 0; ; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      if (i > 9) this.fail('varint too long');
      const b = this.buf[this.pos++]!;
      if (i < 4) lo |= (b & 127) << (i * 7);
      else if (i === 4) {
        lo |= (b & 15) << 28;
        hi |= (b & 127) >> 4;
      } else hi |= (b & 127) << (i * 7 - 32);
      if (b < 128) return [lo >>> 0, hi >>> 0];
    }
  }
  fixed64(): [number, number] {
    if (this.pos + 8 > this.end) this.fail('truncated fixed64');
    const lo = this.buf.readUInt32LE(this.pos);
    const hi = this.buf.readUInt32LE(this.pos + 4);
    this.pos += 8;
    return [lo, hi];
  }
  bytesEnd(): number {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.end) this.fail('length past the end');
    return end;
  }
  string(): string {
    const end = this.bytesEnd();
    // Native slicing: strings built a char at a time are ropes that JSON.stringify must flatten.
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }
  skip(wt: number): void {
    switch (wt) {
      case 0:
        this.varint64();
        return;
      case 1:
        if ((this.pos += 8) > this.end) this.fail('truncated');
        return;
      case 2:
        this.pos = this.bytesEnd();
        return;
      case 5:
        if ((this.pos += 4) > this.end) this.fail('truncated');
        return;
      default:
        this.fail(`wire type ${wt}`);
    }
  }
}

function longString([lo, hi]: [number, number], signed: boolean): string {
  if (signed && hi & 0x80000000) return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString();
  if (hi < 0x200000) return String(hi * 4294967296 + lo);
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

/** One scalar or enum value, canonical form. */
function readScalar(r: In, f: FieldPlan, kind: Kind): unknown {
  switch (kind) {
    case 'string':
      return r.string();
    case 'bool': {
      const [lo, hi] = r.varint64();
      return lo !== 0 || hi !== 0;
    }
    case 'uint32':
      return r.varint64()[0];
    case 'int32':
      return r.varint64()[0] | 0;
    case 'enum': {
      const n = r.varint64()[0] | 0;
      return f.enumNames![n] ?? n;
    }
    case 'fixed64':
      return longString(r.fixed64(), false);
    default:
      return longString(r.varint64(), kind === 'int64');
  }
}

function isDefault(f: FieldPlan, v: unknown): boolean {
  if (f.kind === 'enum') return v === 0 || v === f.enumNames![0];
  if (LONGS.has(f.kind)) return v === '0';
  return v === '' || v === 0 || v === false;
}

function decodeMessage(r: In, plan: TypePlan, end: number): Record<string, unknown> {
  const vals: unknown[] = new Array(plan.fields.length);
  while (r.pos < end) {
    const tag = r.varint();
    const id = tag >>> 3;
    const wt = tag & 7;
    const f = plan.byId.get(id);
    if (!f || id === 0) {
      if (id === 0) r.fail('field number 0');
      r.skip(wt);
      continue;
    }
    const i = f.index;
    if (f.map) {
      if (wt !== 2) r.fail(`${plan.name}.${f.name}: wire type ${wt}`);
      const e = r.bytesEnd();
      let k = '';
      let v: unknown = f.kind === 'message' ? {} : LONGS.has(f.kind) ? '0' : f.kind === 'string' ? '' : f.kind === 'bool' ? false : 0;
      while (r.pos < e) {
        const t = r.varint();
        if (t === 10) k = r.string();
        else if (t >>> 3 === 2 && (t & 7) === wireType(f.kind)) v = f.kind === 'message' ? decodeMessage(r, f.sub!, r.bytesEnd()) : readScalar(r, f, f.kind);
        else r.skip(t & 7);
      }
      if (r.pos !== e) r.fail('map entry overran');
      const m = (vals[i] ??= Object.create(null)) as Record<string, unknown>;
      m[k] = v;
    } else if (f.repeated) {
      const a = (vals[i] ??= []) as unknown[];
      if (wt === 2 && f.kind !== 'string' && f.kind !== 'message') {
        const e = r.bytesEnd();
        while (r.pos < e) a.push(readScalar(r, f, f.kind));
        if (r.pos !== e) r.fail('packed field overran');
      } else {
        if (wt !== wireType(f.kind)) r.fail(`${plan.name}.${f.name}: wire type ${wt}`);
        a.push(f.kind === 'message' ? decodeMessage(r, f.sub!, r.bytesEnd()) : readScalar(r, f, f.kind));
      }
    } else {
      if (wt !== wireType(f.kind)) r.fail(`${plan.name}.${f.name}: wire type ${wt}`);
      if (f.kind === 'message') {
        const e = r.bytesEnd();
        vals[i] = decodeMessage(r, f.sub!, e);
        if (r.pos !== e) r.fail('message overran');
      } else vals[i] = readScalar(r, f, f.kind);
      for (const o of f.siblings) vals[o] = undefined;
    }
  }
  if (r.pos !== end) r.fail('message overran its length');
  const out: Record<string, unknown> = {};
  for (let i = 0; i < plan.fields.length; i++) {
    const v = vals[i];
    if (v === undefined) continue;
    const f = plan.fields[i]!;
    if (f.repeated) {
      if ((v as unknown[]).length) out[f.name] = v;
    } else if (f.map || f.kind === 'message' || f.oneof || !isDefault(f, v)) out[f.name] = v;
  }
  return out;
}

// ---- the codec ------------------------------------------------------------------------------

export interface EventCodec {
  /** The wire form of a stamped event, equal to schema.encodeEvent's. Throws CodecError (a SchemaError). */
  encode(ev: EventInput): Buffer;
  /** The canonical JSON object of an Event's bytes, equal to schema.decodeEvent's. Throws CodecError. */
  decode(bytes: Uint8Array): CanonicalEvent;
  /** decode, as one JSON line without a newline (schema.toJsonLine's form). */
  jsonLine(bytes: Uint8Array): string;
}

export function compileEventCodec(schema: EventSchema): EventCodec {
  const plan = compile(schema.Event, new Map());
  const out = new Out();
  const asBuffer = (b: Uint8Array) => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  const decode = (bytes: Uint8Array) => {
    const buf = asBuffer(bytes);
    return decodeMessage(new In(buf, 0, buf.length), plan, buf.length);
  };
  return {
    encode(ev) {
      out.pos = 0;
      encodeMessage(out, plan, ev, 'Event');
      const b = Buffer.allocUnsafe(out.pos);
      out.buf.copy(b, 0, 0, out.pos);
      if (out.buf.length > 1 << 20) out.buf = Buffer.allocUnsafe(4096); // do not keep a huge scratch
      return b;
    },
    decode,
    jsonLine: (bytes) => JSON.stringify(decode(bytes)),
  };
}
