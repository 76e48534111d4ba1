import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  Arm,
  ContainerVerdict,
  EXEC_ARGS_MAX,
  EXEC_FILENAME_MAX,
  GuardWhat,
  KILL_CLASSES,
  KILL_OUTCOMES,
  KILL_REASONS,
  NS_NAMES,
  ObjFlag,
  PeerKind,
  RECORD_TYPE_MAX,
  RecordType,
  statNames,
  SYSCALL_NAMES,
  TaskFlag,
  structs,
} from '../../src/decode/layout';

/**
 * The decoder's offsets (src/decode/layout.ts) against the BTF of the built
 * BPF object: both directions, so that a field added, moved or resized on
 * either side fails here.
 */
const OBJ = join(__dirname, '../../bpf/.output/ctrwatch.bpf.o');

interface BtfType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number }[];
  values?: { name: string; val: number }[];
}

function loadBtf(): Map<number, BtfType> {
  const out = execFileSync('bpftool', ['btf', 'dump', 'file', OBJ, '-j'], { maxBuffer: 64 << 20 }).toString();
  const types = (JSON.parse(out) as { types: BtfType[] }).types;
  return new Map(types.map((t) => [t.id, t]));
}

function sizeOf(btf: Map<number, BtfType>, id: number): number {
  const t = btf.get(id);
  if (!t) throw new Error(`BTF type ${id} missing`);
  switch (t.kind) {
    case 'INT':
    case 'STRUCT':
    case 'UNION':
    case 'ENUM':
    case 'ENUM64':
      return t.size!;
    case 'TYPEDEF':
    case 'CONST':
    case 'VOLATILE':
      return sizeOf(btf, t.type_id!);
    case 'ARRAY':
      return t.nr_elems! * sizeOf(btf, t.type_id!);
    case 'PTR':
      return 8;
    default:
      throw new Error(`unexpected BTF kind ${t.kind}`);
  }
}

describe('record layout matches the BPF object BTF', () => {
  it('has a built object to check (make build)', () => {
    expect(existsSync(OBJ), `${OBJ} is missing: run make build`).toBe(true);
  });

  const btf = existsSync(OBJ) ? loadBtf() : new Map<number, BtfType>();
  for (const [name, layout] of Object.entries(structs)) {
    it(name, () => {
      const st = [...btf.values()].find((t) => t.kind === 'STRUCT' && t.name === name);
      expect(st, `struct ${name} not in BTF`).toBeDefined();
      expect(st!.size).toBe(layout.size);
      const fromBtf: Record<string, [number, number]> = {};
      for (const m of st!.members!) {
        if (m.name.startsWith('_pad')) continue;
        expect(m.bits_offset % 8, `${name}.${m.name} is a bitfield`).toBe(0);
        fromBtf[m.name] = [m.bits_offset / 8, sizeOf(btf, m.type_id)];
      }
      expect(layout.fields).toEqual(fromBtf);
    });
  }

  function enumValues(name: string): Record<string, number> {
    const e = [...btf.values()].find((t) => t.kind === 'ENUM' && t.name === name);
    expect(e, `enum ${name} not in BTF`).toBeDefined();
    return Object.fromEntries(e!.values!.map((v) => [v.name, v.val]));
  }

  it('enum cw_type', () => {
    const want: Record<string, number> = { CW_TYPE_MAX: RECORD_TYPE_MAX };
    for (const [k, v] of Object.entries(RecordType)) want[`CW_${k}`] = v;
    expect(enumValues('cw_type')).toEqual(want);
  });

  it('enum cw_ns', () => {
    const want: Record<string, number> = { CW_NS_COUNT: NS_NAMES.length };
    NS_NAMES.forEach((n, i) => (want[`CW_NS_${n.toUpperCase()}`] = i));
    expect(enumValues('cw_ns')).toEqual(want);
  });

  it('enum cw_sc', () => {
    const want: Record<string, number> = { CW_SC_MAX: SYSCALL_NAMES.length };
    SYSCALL_NAMES.forEach((n, i) => n && (want[`CW_SC_${n.toUpperCase()}`] = i));
    expect(enumValues('cw_sc')).toEqual(want);
  });

  it('enum cw_guard_what and cw_peer_kind', () => {
    const what: Record<string, number> = {};
    for (const [k, v] of Object.entries(GuardWhat)) what[`CW_GUARD_${k}`] = v;
    expect(enumValues('cw_guard_what')).toEqual(what);
    const peer: Record<string, number> = {};
    for (const [k, v] of Object.entries(PeerKind)) peer[`CW_PEER_${k}`] = v;
    expect(enumValues('cw_peer_kind')).toEqual(peer);
  });

  it('enum cw_obj_flags', () => {
    const want: Record<string, number> = {};
    for (const [k, v] of Object.entries(ObjFlag)) want[`CW_OF_${k}`] = v;
    expect(enumValues('cw_obj_flags')).toEqual(want);
  });

  it('enum cw_task_flags', () => {
    const want: Record<string, number> = {};
    for (const [k, v] of Object.entries(TaskFlag)) want[`CW_TF_${k}`] = v;
    expect(enumValues('cw_task_flags')).toEqual(want);
  });

  it('containment enums: cw_kill_class, cw_kill_outcome, cw_kill_reason, cw_arm, cw_container_verdict', () => {
    const byIndex = (prefix: string, names: readonly string[], max: string) => {
      const want: Record<string, number> = { [max]: names.length };
      names.forEach((n, i) => (want[`${prefix}${(n || 'none').toUpperCase()}`] = i));
      return want;
    };
    expect(enumValues('cw_kill_class')).toEqual(byIndex('CW_KC_', KILL_CLASSES, 'CW_KC_MAX'));
    expect(enumValues('cw_kill_outcome')).toEqual(byIndex('CW_KO_', KILL_OUTCOMES, 'CW_KO_MAX'));
    const reasons = byIndex('CW_KR_', KILL_REASONS, 'CW_KR_MAX');
    delete reasons.CW_KR_MAX;
    expect(enumValues('cw_kill_reason')).toEqual(reasons);
    const arm: Record<string, number> = {};
    for (const [k, v] of Object.entries(Arm)) arm[`CW_ARM_${k}`] = v;
    expect(enumValues('cw_arm')).toEqual(arm);
    const cv: Record<string, number> = {};
    for (const [k, v] of Object.entries(ContainerVerdict)) cv[`CW_CV_${k}`] = v;
    expect(enumValues('cw_container_verdict')).toEqual(cv);
  });

  it("the exec record's data[] split: CW_FILENAME_LEN and CW_ARGS_LEN (defines, not in BTF)", () => {
    const h = readFileSync(join(__dirname, '../../bpf/ctrwatch.h'), 'utf8');
    const def = (name: string) => Number(new RegExp(`^#define ${name}\\s+(\\d+)`, 'm').exec(h)?.[1]);
    expect([def('CW_FILENAME_LEN'), def('CW_ARGS_LEN')]).toEqual([EXEC_FILENAME_MAX, EXEC_ARGS_MAX]);
  });

  it('enum cw_stat: the counter names cover every slot', () => {
    const e = enumValues('cw_stat');
    const names = statNames();
    expect(names).toHaveLength(e.CW_STAT_MAX);
    expect(e.CW_STAT_PENDING_FULL).toBe(RECORD_TYPE_MAX * 2);
    const slots = [
      'PENDING_FULL',
      'TASKS_FULL',
      'ARGS_FAULT',
      'WAKEUPS',
      'FAILED_UNFOLLOWED',
      'RATE_LIMITED',
      'BULK_SENT',
      'BULK_DROPPED',
      'PRIO_SENT',
      'PRIO_DROPPED',
      'URING_SUBMITS',
      'FORKS_HELD',
    ];
    expect(slots.map((k) => e[`CW_STAT_${k}`])).toEqual(slots.map((_, i) => e.CW_STAT_PENDING_FULL + i));
    expect(names.slice(e.CW_STAT_PENDING_FULL)).toEqual([
      'syscall_pending_full',
      'follow_set_full',
      'args_fault',
      'wakeups',
      'failed_unfollowed',
      'rate_limited',
      'ring_bulk_sent',
      'ring_bulk_dropped',
      'ring_prio_sent',
      'ring_prio_dropped',
      'uring_submits',
      'forks_held',
      ...KILL_CLASSES.slice(1).flatMap((c) => KILL_OUTCOMES.slice(1).map((o) => `kill_${c}_${o}`)),
    ]);
    // CW_STAT_KILL(cls, outcome) = KILL_FIRST + (cls - 1) * (KO_MAX - 1) + outcome - 1
    expect(e.CW_STAT_KILL_FIRST).toBe(names.indexOf('kill_control_write_killed'));
  });
});
