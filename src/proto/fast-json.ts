import protobuf from 'protobufjs';
import { loadEventSchema, type EventInput } from './schema';

/**
 * proto3 canonical JSON of an event the sensor itself built, without the
 * checks and the round trip through a protobufjs Message that toJsonLine does
 * for input of unknown origin (that costs ~100 µs an event; this a few). Same
 * output — a unit test holds the two to it field for field — driven by the
 * same reflection: lowerCamelCase names, enum names, 64-bit integers as
 * strings, defaults left out (but not a set oneof member or message).
 */
const LONG = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

type Kind = 'enum' | 'long' | 'bool' | 'string' | 'number';
interface Plan {
  name: string;
  quoted: string;
  kind: Kind;
  enumById?: Record<number, string>;
  sub?: Plan[];
  map: boolean;
  repeated: boolean;
  oneof: boolean;
}

/** A field list per message type, computed once from the reflection. */
function planOf(type: protobuf.Type, seen = new Map<protobuf.Type, Plan[]>()): Plan[] {
  const have = seen.get(type);
  if (have) return have;
  const plan: Plan[] = [];
  seen.set(type, plan);
  for (const f of type.fieldsArray) {
    const rt = f.resolvedType;
    const kind: Kind =
      rt instanceof protobuf.Enum
        ? 'enum'
        : LONG.has(f.type)
          ? 'long'
          : f.type === 'bool'
            ? 'bool'
            : f.type === 'string'
              ? 'string'
              : 'number';
    plan.push({
      name: f.name,
      quoted: JSON.stringify(f.name),
      kind,
      enumById: rt instanceof protobuf.Enum ? rt.valuesById : undefined,
      sub: rt instanceof protobuf.Type ? planOf(rt, seen) : undefined,
      map: f.map,
      repeated: f.repeated,
      oneof: f.partOf !== null && f.partOf !== undefined,
    });
  }
  return plan;
}

function scalar(p: Plan, v: unknown, keepDefault: boolean): string | undefined {
  switch (p.kind) {
    case 'enum': {
      const name = typeof v === 'number' ? p.enumById![v] : (v as string);
      return !keepDefault && (v === 0 || name === p.enumById![0]) ? undefined : JSON.stringify(name);
    }
    case 'long': {
      const s = typeof v === 'bigint' ? v.toString() : String(v);
      return !keepDefault && s === '0' ? undefined : `"${s}"`;
    }
    case 'bool':
      return !keepDefault && v === false ? undefined : v ? 'true' : 'false';
    case 'string':
      return !keepDefault && v === '' ? undefined : JSON.stringify(v);
    default:
      return !keepDefault && v === 0 ? undefined : String(v);
  }
}

function message(plan: Plan[], obj: Record<string, unknown>): string {
  let out = '';
  for (const p of plan) {
    const v = obj[p.name];
    if (v === undefined || v === null) continue;
    let s: string | undefined;
    if (p.map) {
      let m = '';
      for (const k in v as Record<string, unknown>) {
        const x = (v as Record<string, unknown>)[k];
        m += `${m ? ',' : ''}${JSON.stringify(k)}:${p.sub ? message(p.sub, x as Record<string, unknown>) : scalar(p, x, true)}`;
      }
      if (!m) continue;
      s = `{${m}}`;
    } else if (p.repeated) {
      const a = v as unknown[];
      if (!a.length) continue;
      let r = '';
      for (let i = 0; i < a.length; i++)
        r += `${i ? ',' : ''}${p.sub ? message(p.sub, a[i] as Record<string, unknown>) : scalar(p, a[i], true)}`;
      s = `[${r}]`;
    } else if (p.sub) {
      s = message(p.sub, v as Record<string, unknown>);
    } else {
      s = scalar(p, v, p.oneof);
    }
    if (s !== undefined) out += `${out ? ',' : ''}${p.quoted}:${s}`;
  }
  return `{${out}}`;
}

let eventPlan: Plan[] | undefined;

export function fastJsonLine(e: EventInput): string {
  eventPlan ??= planOf(loadEventSchema().Event);
  return message(eventPlan, e as Record<string, unknown>);
}
