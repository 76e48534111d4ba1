// A fast codec for ctrwatch.v1.Event, compiled once from the schema's reflection.
//
// Why not schema.encodeEvent: it validates, converts, verifies, prunes and converts again
// (~90 µs an event here), which caps a sink at ~11k events/s. This codec walks the input once:
// it checks every value with the same rules as schema.checkInput, drops proto3 defaults the way
// pruneDefaults does, and writes the wire form directly, byte for byte what encodeEvent writes
// (test/unit/sink-codec.test.ts holds it to that). The decoder goes the other way, from bytes
// straight to the canonical JSON object that schema.decodeEvent returns, for the stdout sink
// and the collector.

import type { CanonicalEvent, EventInput, EventSchema } from './schema';
import { compile } from './codec-plan';
import { encodeMessage, Out } from './codec-encode';
import { decodeMessage, In, readHead, type EventHead } from './codec-decode';
import { JsonOut, writeEvent, type EventJsonPlan, type JsonHead } from './codec-json';

export { JsonOut } from './codec-json';
export type { JsonHead } from './codec-json';

export { CodecError } from './codec-plan';
export { encodeOnce } from './codec-encode';
export type { EventHead } from './codec-decode';

export interface EventCodec {
  /** The wire form of a stamped event, equal to schema.encodeEvent's. Throws CodecError (a SchemaError). */
  encode(ev: EventInput): Buffer;
  /** encode, and the name of the Event.kind member set ("detection", ...; undefined when none). */
  encodeKind(ev: EventInput): { bytes: Buffer; kind: string | undefined };
  /** The canonical JSON object of an Event's bytes, equal to schema.decodeEvent's. Throws CodecError. */
  decode(bytes: Uint8Array): CanonicalEvent;
  /** decode, as one JSON line without a newline (schema.toJsonLine's form). */
  jsonLine(bytes: Uint8Array): string;
  /** seq, node and boot id only. Throws CodecError on a malformed top level. */
  head(bytes: Uint8Array): EventHead;
  /**
   * Appends the event's JSON line (no newline) to `out`, and fills `head` with its top-level
   * fields: jsonLine's bytes, written without building the object when the event allows
   * (codec-json.ts). Throws CodecError.
   */
  writeJson(bytes: Uint8Array, out: JsonOut, head: JsonHead): void;
}

export function compileEventCodec(schema: EventSchema): EventCodec {
  const plan = compile(schema.Event, new Map());
  const out = new Out();
  const asBuffer = (b: Uint8Array) => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  const decode = (bytes: Uint8Array) => {
    const buf = asBuffer(bytes);
    return decodeMessage(new In(buf, 0, buf.length), plan, buf.length);
  };
  const encodeKind = (ev: EventInput) => {
    out.pos = 0;
    const kind = encodeMessage(out, plan, ev, 'Event');
    const bytes = Buffer.allocUnsafe(out.pos);
    out.buf.copy(bytes, 0, 0, out.pos);
    if (out.buf.length > 1 << 20) out.buf = Buffer.allocUnsafe(4096); // do not keep a huge scratch
    return { bytes, kind };
  };
  const kinds = plan.fields.filter((f) => f.oneof === 'kind').map((f) => f.name);
  const field = (name: string) => plan.byName.get(name)!;
  const jsonPlan: EventJsonPlan = { plan, seq: field('seq'), time: field('timeUnixNano'), node: field('node'), bootId: field('bootId') };
  const scratch = new JsonOut(4096);
  const scratchHead: JsonHead = { seq: undefined, timeUnixNano: undefined, node: '', bootId: '', kind: undefined };
  const slowJson = (bytes: Uint8Array, out: JsonOut, head: JsonHead) => {
    const obj = decode(bytes) as Record<string, unknown>;
    out.utf8(JSON.stringify(obj));
    head.seq = obj.seq as string | undefined;
    head.timeUnixNano = obj.timeUnixNano as string | undefined;
    head.node = (obj.node as string | undefined) ?? '';
    head.bootId = (obj.bootId as string | undefined) ?? '';
    head.kind = kinds.find((k) => obj[k] !== undefined);
  };
  return {
    encode: (ev) => encodeKind(ev).bytes,
    writeJson(bytes, out, head) {
      if (!writeEvent(asBuffer(bytes), jsonPlan, out, head)) slowJson(bytes, out, head);
    },
    encodeKind,
    decode,
    jsonLine(bytes) {
      scratch.pos = 0;
      if (!writeEvent(asBuffer(bytes), jsonPlan, scratch, scratchHead)) return JSON.stringify(decode(bytes));
      const line = scratch.buf.toString('utf8', 0, scratch.pos);
      if (scratch.buf.length > 1 << 20) scratch.buf = Buffer.allocUnsafe(4096); // do not keep a huge scratch
      return line;
    },
    head(bytes) {
      const buf = asBuffer(bytes);
      return readHead(new In(buf, 0, buf.length), plan);
    },
  };
}
