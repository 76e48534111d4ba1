// An Event's canonical JSON line written from its bytes straight into a byte buffer: what
// JSON.stringify(decode(bytes)) gives, byte for byte, without the object tree, the strings and
// the UTF-8 encoding of the result in between (the collector's cost per event). The common
// case only: fields in declaration order, each once, no map fields. Anything else (another
// encoder's order, a repeated oneof, a map, non-ASCII text) is handed back to the caller, who
// takes the decode-and-stringify path: test/unit/sink-codec.test.ts holds both to the same
// output.

import { In, longString } from './codec-decode';
import { wireType, type FieldPlan, type TypePlan } from './codec-plan';

/** Not the common case: use JSON.stringify(decode()). Thrown without a stack, caught at once. */
class Slow {}
const SLOW = new Slow();

const HEX = '0123456789abcdef';
const ESCAPES: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r', 34: '\\"', 92: '\\\\' };

/** A growable byte buffer. */
export class JsonOut {
  buf: Buffer;
  pos = 0;
  constructor(size = 1 << 16) {
    this.buf = Buffer.allocUnsafe(size);
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }
  byte(c: number): void {
    this.ensure(1);
    this.buf[this.pos++] = c;
  }
  bytes(b: Buffer): void {
    const n = b.length;
    this.ensure(n);
    // Keys and enum names are a few bytes: a loop beats Buffer.copy's call (and its view object).
    if (n <= 32) {
      const out = this.buf;
      let p = this.pos;
      for (let i = 0; i < n; i++) out[p++] = b[i]!;
      this.pos = p;
    } else this.pos += b.copy(this.buf, this.pos);
  }
  /** ASCII text (digits, names). */
  ascii(s: string): void {
    const n = s.length;
    this.ensure(n);
    if (n <= 32) {
      const out = this.buf;
      let p = this.pos;
      for (let i = 0; i < n; i++) out[p++] = s.charCodeAt(i);
      this.pos = p;
    } else this.pos += this.buf.write(s, this.pos, 'latin1');
  }
  utf8(s: string): void {
    const n = Buffer.byteLength(s);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }
}

/** An enum value's `"NAME"`; undefined for a number the enum does not name. */
function quotedName(f: FieldPlan, n: number): Buffer | undefined {
  if (n >= 0 && n < f.jsonNames!.length) return f.jsonNames![n];
  const name = f.enumNames![n];
  return name === undefined ? undefined : Buffer.from(JSON.stringify(name), 'latin1');
}

/** A string field's bytes as a JSON string; non-ASCII text goes the slow way (JSON.stringify's escapes of it). */
function writeString(r: In, o: JsonOut): void {
  const end = r.bytesEnd();
  const src = r.buf;
  o.ensure(2 + 6 * (end - r.pos));
  const out = o.buf;
  let p = o.pos;
  out[p++] = 34;
  for (let i = r.pos; i < end; i++) {
    const c = src[i]!;
    if (c >= 0x20 && c !== 34 && c !== 92 && c < 0x80) out[p++] = c;
    else if (c >= 0x80) throw SLOW;
    else {
      const e = ESCAPES[c] ?? `\\u00${HEX[c >> 4]}${HEX[c & 15]}`;
      for (let k = 0; k < e.length; k++) out[p++] = e.charCodeAt(k);
    }
  }
  out[p++] = 34;
  o.pos = p;
  r.pos = end;
}

/** One scalar or enum value; false (nothing written) when it is the default and `keep` is not set. */
function writeScalar(r: In, f: FieldPlan, o: JsonOut, keep: boolean, key: Buffer | undefined): boolean {
  switch (f.kind) {
    case 'string': {
      if (!keep && r.buf[r.pos] === 0 && r.pos < r.end) {
        r.pos++; // empty string: a zero length
        return false;
      }
      if (key) o.bytes(key);
      writeString(r, o);
      return true;
    }
    case 'bool': {
      const [lo, hi] = r.varint64();
      const v = lo !== 0 || hi !== 0;
      if (!v && !keep) return false;
      if (key) o.bytes(key);
      o.ascii(v ? 'true' : 'false');
      return true;
    }
    case 'uint32':
    case 'int32': {
      const lo = r.varint64()[0];
      const v = f.kind === 'int32' ? lo | 0 : lo;
      if (v === 0 && !keep) return false;
      if (key) o.bytes(key);
      o.ascii(String(v));
      return true;
    }
    case 'enum': {
      const n = r.varint64()[0] | 0;
      if (n === 0 && !keep) return false;
      if (key) o.bytes(key);
      const name = quotedName(f, n);
      if (name === undefined) o.ascii(String(n));
      else o.bytes(name);
      return true;
    }
    default: {
      const lh = f.kind === 'fixed64' ? r.fixed64() : r.varint64();
      if (lh[0] === 0 && lh[1] === 0 && !keep) return false;
      if (key) o.bytes(key);
      o.byte(34);
      o.ascii(longString(lh, f.kind === 'int64'));
      o.byte(34);
      return true;
    }
  }
}

/** The top-level fields a receiver checks, filled by writeEvent. */
export interface JsonHead {
  seq: string | undefined;
  timeUnixNano: string | undefined;
  node: string;
  bootId: string;
  kind: string | undefined;
}

/** Elements of a repeated field (its key and "[" or "," written already). */
function writeRepeated(r: In, plan: TypePlan, f: FieldPlan, wt: number, o: JsonOut): void {
  const packed = wt === 2 && f.kind !== 'string' && f.kind !== 'message';
  if (!packed) {
    if (wt !== wireType(f.kind)) r.fail(`${plan.name}.${f.name}: wire type ${wt}`);
    if (f.kind === 'message') writeMessage(r, f.sub!, r.bytesEnd(), o);
    else writeScalar(r, f, o, true, undefined);
    return;
  }
  const e = r.bytesEnd();
  // An empty packed run: canonical JSON leaves the field out, or has nothing to add to it.
  if (e === r.pos) throw SLOW;
  let sep = false;
  while (r.pos < e) {
    if (sep) o.byte(44);
    sep = true;
    writeScalar(r, f, o, true, undefined);
  }
  if (r.pos !== e) r.fail('packed field overran');
}

function writeMessage(r: In, plan: TypePlan, end: number, o: JsonOut): void {
  o.byte(123);
  let wrote = false;
  let last = -1;
  let open: FieldPlan | undefined; // the repeated field whose array is open
  let oneof: string | undefined;
  while (r.pos < end) {
    const f = r.nextField(plan);
    if (!f) continue;
    const wt = r.wt;
    if (open && open !== f) {
      o.byte(93);
      open = undefined;
    }
    if (f.map || f.index < last || (f.index === last && open !== f)) throw SLOW;
    last = f.index;
    if (f.oneof) {
      if (oneof === f.oneof) throw SLOW;
      oneof = f.oneof;
    }
    if (f.repeated) {
      if (!open) {
        if (wrote) o.byte(44);
        o.bytes(f.jsonKey);
        o.byte(91);
      } else o.byte(44);
      writeRepeated(r, plan, f, wt, o);
      open = f;
      wrote = true;
      continue;
    }
    if (wt !== wireType(f.kind)) r.fail(`${plan.name}.${f.name}: wire type ${wt}`);
    if (f.kind === 'message') {
      const e = r.bytesEnd();
      if (wrote) o.byte(44);
      o.bytes(f.jsonKey);
      writeMessage(r, f.sub!, e, o);
      if (r.pos !== e) r.fail('message overran');
      wrote = true;
      continue;
    }
    const mark = o.pos;
    if (wrote) o.byte(44);
    if (writeScalar(r, f, o, f.oneof !== undefined, f.jsonKey)) wrote = true;
    else o.pos = mark;
  }
  if (open) o.byte(93);
  if (r.pos !== end) r.fail('message overran its length');
  o.byte(125);
}

export interface EventJsonPlan {
  plan: TypePlan;
  seq: FieldPlan;
  time: FieldPlan;
  node: FieldPlan;
  bootId: FieldPlan;
}

/**
 * Appends an Event's JSON line (no newline) to `o` and fills `head`; false, with `o` as it was,
 * when the event is not the common case (the caller then decodes and stringifies it). Throws
 * CodecError on bytes that are not an Event.
 */
export function writeEvent(bytes: Buffer, p: EventJsonPlan, o: JsonOut, head: JsonHead): boolean {
  const start = o.pos;
  const r = new In(bytes, 0, bytes.length);
  try {
    writeMessage(r, p.plan, bytes.length, o);
  } catch (err) {
    if (err !== SLOW) throw err;
    o.pos = start;
    return false;
  }
  // The head from the top-level fields just written (a second, shallow pass: few fields).
  head.seq = head.timeUnixNano = head.kind = undefined;
  head.node = head.bootId = '';
  const h = new In(bytes, 0, bytes.length);
  while (h.pos < h.end) {
    const tag = h.varint();
    const id = tag >>> 3;
    const wt = tag & 7;
    if (id === p.seq.id && wt === 0) head.seq = longString(h.varint64(), false);
    else if (id === p.time.id && wt === wireType(p.time.kind))
      head.timeUnixNano = longString(p.time.kind === 'fixed64' ? h.fixed64() : h.varint64(), false);
    else if (id === p.node.id && wt === 2) head.node = h.string();
    else if (id === p.bootId.id && wt === 2) head.bootId = h.string();
    else {
      const f = p.plan.byNumber[id];
      if (f && f.oneof === 'kind') head.kind = f.name;
      h.skip(wt);
    }
  }
  return true;
}
