// Decoding Event bytes to the canonical JSON object schema.decodeEvent returns. See codec.ts.

import { LONGS, wireType, type FieldPlan, type Kind, type TypePlan } from './codec-plan';
import { CodecError } from './codec-plan';

export class In {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
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
  /** Wire type of the tag nextField read last. */
  wt = 0;
  /**
   * Reads a field's tag: its plan, with its wire type in `wt`; undefined, the field skipped,
   * when the plan has no such field (another version's). Field number 0 is malformed.
   */
  nextField(plan: TypePlan): FieldPlan | undefined {
    const tag = this.varint();
    const id = tag >>> 3;
    this.wt = tag & 7;
    const f = plan.byNumber[id];
    if (f !== undefined && id !== 0) return f;
    if (id === 0) this.fail('field number 0');
    this.skip(this.wt);
    return undefined;
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

export function longString([lo, hi]: [number, number], signed: boolean): string {
  if (signed && hi & 0x80000000) return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString();
  if (hi < 0x200000) return String(hi * 4294967296 + lo);
  // Above 2^53 (every nanosecond timestamp) without a BigInt: hi * 2^32 + lo in base 10^6,
  // 2^32 = 4294 * 10^6 + 967296, each part exact in a double.
  const a = hi * 967296 + lo;
  const low = a % 1e6;
  return `${hi * 4294 + (a - low) / 1e6}${String(low).padStart(6, '0')}`;
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

export function decodeMessage(r: In, plan: TypePlan, end: number): Record<string, unknown> {
  const vals: unknown[] = new Array(plan.fields.length);
  while (r.pos < end) {
    const f = r.nextField(plan);
    if (!f) continue;
    const wt = r.wt;
    const i = f.index;
    if (f.map) {
      if (wt !== 2) r.fail(`${plan.name}.${f.name}: wire type ${wt}`);
      const e = r.bytesEnd();
      let k = '';
      let v: unknown = f.kind === 'message' ? {} : LONGS.has(f.kind) ? '0' : f.kind === 'string' ? '' : f.kind === 'bool' ? false : 0;
      while (r.pos < e) {
        const t = r.varint();
        if (t === 10) k = r.string();
        else if (t >>> 3 === 2 && (t & 7) === wireType(f.kind))
          v = f.kind === 'message' ? decodeMessage(r, f.sub!, r.bytesEnd()) : readScalar(r, f, f.kind);
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

/** seq, node and boot id of an Event, read without decoding the rest. */
export interface EventHead {
  seq: bigint;
  node: string;
  bootId: string;
}

export function readHead(r: In, plan: TypePlan): EventHead {
  const head: EventHead = { seq: 0n, node: '', bootId: '' };
  const ids = { seq: plan.byName.get('seq')!.id, node: plan.byName.get('node')!.id, bootId: plan.byName.get('bootId')!.id };
  while (r.pos < r.end) {
    const tag = r.varint();
    const id = tag >>> 3;
    const wt = tag & 7;
    if (id === ids.seq && wt === 0) {
      const [lo, hi] = r.varint64();
      head.seq = (BigInt(hi) << 32n) | BigInt(lo);
    } else if (id === ids.node && wt === 2) head.node = r.string();
    else if (id === ids.bootId && wt === 2) head.bootId = r.string();
    else r.skip(wt);
  }
  return head;
}
