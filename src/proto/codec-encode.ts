// Encoding an EventInput to the wire, checking each value as schema.checkInput does. See codec.ts.

import { CodecError, I64_MAX, I64_MIN, U64_MAX, wireType, type FieldPlan, type Kind, type TypePlan } from './codec-plan';

/** A growable scratch buffer, reused from event to event. */
export class Out {
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

/**
 * Messages marked to be encoded once (encodeOnce): the body bytes of the most recently encoded
 * ones. A container's metadata travels in every event about it; marked, it is encoded the first
 * time only, and later events copy its bytes. Bounded: kept for every container of a node, the
 * bytes cost ~5 KB a container in resident memory (measured at 10,000), more than re-encoding
 * the few events of a quiet container saves.
 */
const once = new WeakSet<object>();
// Bodies are kept as one-byte strings (latin1: one char a byte): on V8's heap, not malloc'd
// Buffers, whose churn left the process's resident memory higher after they were freed.
const bodies = new Map<object, { plan: TypePlan; body: string }>();
const BODIES_MAX = 1024;

// Nested values shared between inputs (argv, capability names, a container's metadata) are
// frozen already: the walk stops at them, so a new input costs about one freeze.
function deepFreeze(v: object): void {
  if (Object.isFrozen(v)) return;
  Object.freeze(v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x === 'object' && x !== null) deepFreeze(x);
    }
    return;
  }
  for (const k in v) {
    const x: unknown = (v as Record<string, unknown>)[k];
    if (typeof x === 'object' && x !== null) deepFreeze(x);
  }
}

/**
 * Marks a message object to be encoded once: freezes it, deeply (so that the bytes kept stay
 * true: a change throws instead of going unseen), and returns it.
 */
export function encodeOnce<T extends object>(message: T): T {
  deepFreeze(message);
  once.add(message);
  return message;
}

/** Writes a sub-message's length and body (its tag written already), from the kept bytes when it was marked. */
function encodeBody(out: Out, plan: TypePlan, v: unknown, where: Path): void {
  const marked = typeof v === 'object' && v !== null && once.has(v);
  if (marked) {
    const hit = bodies.get(v);
    if (hit && hit.plan === plan) {
      const n = hit.body.length;
      out.varint(n);
      out.ensure(n);
      out.pos += out.buf.write(hit.body, out.pos, n, 'latin1');
      return;
    }
  }
  const start = out.fork();
  encodeMessage(out, plan, v, where);
  if (marked) {
    if (bodies.size >= BODIES_MAX) bodies.delete(bodies.keys().next().value!);
    bodies.set(v, { plan, body: out.buf.toString('latin1', start, out.pos) });
  }
  out.ldelim(start);
}

/**
 * Where a value sits, spelt out only when it is wrong: the parent's place, then a field name or
 * an index. A chain of these is walked at the moment of the error (each level's key is the one
 * being encoded then), so encoding a valid event builds no path strings.
 */
type Where = { parent: Path; key: string | number };
type Path = string | Where;
const pathOf = (p: Path): string => (typeof p === 'string' ? p : at(p));
const at = (w: Where): string => {
  const parent = pathOf(w.parent);
  return typeof w.key === 'number' ? `${parent}[${w.key}]` : w.key.startsWith('[') ? `${parent}${w.key}` : `${parent}.${w.key}`;
};

function problem(where: Path, what: string): never {
  throw new CodecError(`${pathOf(where)}: ${what}`);
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
    if (v > 0n && v <= U64_MAX) return [Number(v & 0xffffffffn), Number(v >> 32n)]; // the common case, for any kind
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
  const ok =
    typeof v === 'number' && Number.isInteger(v) && (kind === 'uint32' ? v >= 0 && v <= 4294967295 : v >= -2147483648 && v <= 2147483647);
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

/**
 * Encode a message; returns the name of the oneof member set (Event.kind for an Event).
 * Walks the object's own keys (V8's fast for-in path) and writes them in field-number order:
 * reading every field of the plan by name instead costs a lookup for each absent field (code
 * generated per type, tried, was slower for that reason).
 */
export function encodeMessage(out: Out, plan: TypePlan, obj: unknown, where: Path): string | undefined {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) problem(where, 'object expected');
  const rec = obj as Record<string, unknown>;
  const present: FieldPlan[] = [];
  let oneofSeen: string | undefined;
  let member: string | undefined;
  for (const key in rec) {
    const f = plan.byName.get(key);
    if (!f) {
      if (Object.prototype.hasOwnProperty.call(rec, key)) problem(`${pathOf(where)}.${key}`, 'no such field');
      continue;
    }
    const v = rec[key];
    if (v === undefined || v === null) continue;
    if (f.oneof) {
      if (oneofSeen === f.oneof) problem(where, `more than one of ${plan.oneofs.find((m) => m.includes(f.name))!.join(', ')}`);
      oneofSeen = f.oneof;
      member = f.name;
    }
    let i = present.length;
    present.push(f);
    while (i > 0 && present[i - 1]!.id > f.id) {
      present[i] = present[i - 1]!;
      i--;
    }
    present[i] = f;
  }
  if (!present.length) return member;
  const w: Where = { parent: where, key: '' };
  for (const f of present) {
    const v = rec[f.name];
    w.key = f.name;
    if (f.map) encodeMap(out, f, v, w);
    else if (f.repeated) encodeRepeated(out, f, v, w);
    else if (f.kind === 'message') {
      out.varint((f.id << 3) | 2);
      encodeBody(out, f.sub!, v, w);
    } else writeScalar(out, f, f.kind, v, w, (f.id << 3) | wireType(f.kind), f.oneof !== undefined);
  }
  return member;
}

function encodeRepeated(out: Out, f: FieldPlan, v: unknown, where: Where): void {
  if (!Array.isArray(v)) problem(where, 'array expected');
  if (v.length === 0) return;
  const w: Where = { parent: where, key: 0 };
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
      encodeBody(out, f.sub!, v[i], w);
    } else {
      if (v[i] === null || v[i] === undefined) problem(w, `${f.kind} expected`);
      writeScalar(out, f, f.kind, v[i], w, tag, true);
    }
  }
}

function encodeMap(out: Out, f: FieldPlan, v: unknown, where: Where): void {
  if (typeof v !== 'object' || Array.isArray(v)) problem(where, 'map (object) expected');
  const m = v as Record<string, unknown>;
  const w: Where = { parent: where, key: '' };
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
      encodeMessage(out, f.sub!, x, w);
      out.ldelim(s2);
    } else writeScalar(out, f, f.kind, x, w, (2 << 3) | wireType(f.kind), true);
    out.ldelim(start);
  }
}
