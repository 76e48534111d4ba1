// The codec's plan of ctrwatch.v1.Event: every message's fields, compiled once from the schema's
// protobufjs reflection. See codec.ts.

import * as protobuf from 'protobufjs';
import { SchemaError } from './schema';

export type Scalar = 'string' | 'bool' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'fixed64';
export type Kind = Scalar | 'enum' | 'message';

export interface FieldPlan {
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
  /** `"name":` in latin1, for the JSON writer. */
  jsonKey: Buffer;
  /** An enum's `"NAME"` by number, for the JSON writer (a hole where the enum names no number). */
  jsonNames?: (Buffer | undefined)[];
}

export interface TypePlan {
  name: string;
  /** Declaration order (the order of keys in canonical JSON). */
  fields: FieldPlan[];
  byName: Map<string, FieldPlan>;
  /** Fields by field number (the readers look up each tag here: an array, not a Map). */
  byNumber: (FieldPlan | undefined)[];
  /** Field-number order (the order protobufjs writes). */
  encodeOrder: FieldPlan[];
  oneofs: string[][];
}

const SCALARS = new Set<string>(['string', 'bool', 'int32', 'uint32', 'int64', 'uint64', 'fixed64']);
export const LONGS = new Set<string>(['int64', 'uint64', 'fixed64']);
export const U64_MAX = 2n ** 64n - 1n;
export const I64_MIN = -(2n ** 63n);
export const I64_MAX = 2n ** 63n - 1n;

export class CodecError extends SchemaError {}

export function wireType(kind: Kind): number {
  if (kind === 'fixed64') return 1;
  if (kind === 'string' || kind === 'message') return 2;
  return 0;
}

function jsonNames(names: Record<number, string>): (Buffer | undefined)[] {
  const out: (Buffer | undefined)[] = [];
  for (const [k, v] of Object.entries(names)) {
    const n = Number(k);
    if (n >= 0 && n < 4096) out[n] = Buffer.from(JSON.stringify(v), 'latin1');
  }
  for (let i = 0; i < out.length; i++) out[i] ??= undefined;
  return out;
}

export function compile(type: protobuf.Type, seen: Map<string, TypePlan>): TypePlan {
  const known = seen.get(type.fullName);
  if (known) return known;
  const plan: TypePlan = { name: type.name, fields: [], byName: new Map(), byNumber: [], encodeOrder: [], oneofs: [] };
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
      name: f.name,
      index: plan.fields.length,
      siblings: [],
      id: f.id,
      kind,
      sub,
      enumValues,
      enumNames,
      keyKind,
      map: isMap,
      repeated: f.repeated && !isMap,
      packed: f.repeated && !isMap && f.packed && kind !== 'string' && kind !== 'message',
      oneof: f.partOf?.name,
      jsonKey: Buffer.from(`${JSON.stringify(f.name)}:`, 'latin1'),
      jsonNames: enumNames && jsonNames(enumNames),
    };
    plan.fields.push(fp);
    plan.byName.set(fp.name, fp);
  }
  for (const f of plan.fields) if (f.oneof) f.siblings = plan.fields.filter((o) => o !== f && o.oneof === f.oneof).map((o) => o.index);
  const top = Math.max(0, ...plan.fields.map((f) => f.id));
  if (top > 4096) throw new CodecError(`codec: ${type.name}: field number ${top} above 4096 not supported`);
  plan.byNumber = new Array<FieldPlan | undefined>(top + 1).fill(undefined);
  for (const f of plan.fields) plan.byNumber[f.id] = f;
  plan.encodeOrder = [...plan.fields].sort((a, b) => a.id - b.id);
  plan.oneofs = type.oneofsArray.map((o) => o.oneof);
  return plan;
}
