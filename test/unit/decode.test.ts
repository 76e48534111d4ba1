import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { decodeBatch } from '../../src/decode/decode';
import { cw_exec, EXEC_ARGS_MAX, EXEC_FILENAME_MAX, RecordType } from '../../src/decode/layout';
import type { CgroupRecord, ExecRecord, SyscallRecord } from '../../src/decode/records';
import { cgroupRecord, execRecord, exitRecord, forkRecord, syscallRecord, task } from '../support/records';

describe('decodeBatch', () => {
  it('decodes every record type with every field', () => {
    const t = task({ pid: 4242, tgid: 4242, ppid: 7, nspid: 1, uid: 1000, euid: 0, comm: 'runc:[2:INIT]', cgroupId: 99n });
    const batch = Buffer.concat([
      forkRecord(t, 0b11),
      execRecord(t, '/usr/bin/runc', ['runc', 'create', '--bundle', '/b', 'abc']),
      exitRecord(t, 7 << 8),
      cgroupRecord(RecordType.CGROUP_MKDIR, '/docker/abc', 1234n),
      syscallRecord(1, -22, [3n, 0x20000n], t, { ...t.ns, mnt: 1 }, ['', '', '']),
      syscallRecord(3, 0, [4096n], t, t.ns, ['/dev/sda1', '/mnt/host', 'ext4']),
    ]);
    const { records, errors } = decodeBatch(batch);
    expect(errors).toEqual([]);
    expect(records.map((r) => r.kind)).toEqual(['fork', 'exec', 'exit', 'cgroup_mkdir', 'syscall', 'syscall']);
    expect(records[0].task).toEqual(t);
    expect(records[0].ktime).toBe(42n);
    expect(records[0].cpu).toBe(1);
    expect(records[0].kind === 'fork' && records[0].newNs).toEqual(['mnt', 'pid']);
    const ex = records[1] as ExecRecord;
    expect(ex.filename).toBe('/usr/bin/runc');
    expect(ex.argv).toEqual(['runc', 'create', '--bundle', '/b', 'abc']);
    expect(ex.argsTruncated).toBe(false);
    expect(ex.exe).toEqual({ ino: 1234n, dev: 66, fsMagic: 0x794c7630, nlink: 1, mtime: 1700000000, ctime: 1700000001 });
    expect(records[2].kind === 'exit' && records[2].exitStatus).toBe(7 << 8);
    const cg = records[3] as CgroupRecord;
    expect([cg.path, cg.cgroupId, cg.hierarchyId, cg.level]).toEqual(['/docker/abc', 1234n, 8, 1]);
    const sc = records[4] as SyscallRecord;
    expect([sc.syscall, sc.ret, sc.args[0], sc.args[1], sc.oldNs.mnt]).toEqual(['setns', -22, 3n, 0x20000n, 1]);
    const m = records[5] as SyscallRecord;
    expect([m.syscall, m.path0, m.path1, m.fstype]).toEqual(['mount', '/dev/sda1', '/mnt/host', 'ext4']);
  });

  it('tells apart argv its cache hashes alike (same length and ends, a middle that differs)', () => {
    // The cache hashes a run's length, first 48 and last 16 bytes, and checks a hit against the
    // bytes (a loop below 48 bytes, a native compare from there): each pair collides by construction.
    for (const n of [100, 200, 1000]) {
      const a = 'a'.repeat(n);
      const b = `${'a'.repeat(n / 2)}b${'a'.repeat(n / 2 - 1)}`;
      const first = decodeBatch(execRecord(task(), '/bin/tool', ['tool', a])).records[0] as ExecRecord;
      const second = decodeBatch(execRecord(task(), '/bin/tool', ['tool', b])).records[0] as ExecRecord;
      const again = decodeBatch(execRecord(task(), '/bin/tool', ['tool', a])).records[0] as ExecRecord;
      expect(first.argv).toEqual(['tool', a]);
      expect(second.argv).toEqual(['tool', b]);
      expect(again.argv).toEqual(['tool', a]);
    }
    // Short runs, checked by the loop: a one-byte difference.
    const x = decodeBatch(execRecord(task(), '/bin/ab', ['ab'])).records[0] as ExecRecord;
    const y = decodeBatch(execRecord(task(), '/bin/ac', ['ac'])).records[0] as ExecRecord;
    expect([x.filename, x.argv, y.filename, y.argv]).toEqual(['/bin/ab', ['ab'], '/bin/ac', ['ac']]);
  });

  it('keeps a truncated last argument and the truncation flag', () => {
    const long = 'x'.repeat(2000);
    const { records } = decodeBatch(execRecord(task(), '/bin/echo', ['echo', long], true));
    const ex = records[0] as ExecRecord;
    expect(ex.argsTruncated).toBe(true);
    expect(ex.argv[0]).toBe('echo');
    expect(ex.argv[1].length).toBe(EXEC_ARGS_MAX - 'echo\0'.length);
  });

  it('cuts a long filename as the kernel does, and reads argv after it', () => {
    const { records, errors } = decodeBatch(execRecord(task(), `/${'d'.repeat(400)}`, ['tool', 'x']));
    expect(errors).toEqual([]);
    const ex = records[0] as ExecRecord;
    expect(ex.filename).toBe(`/${'d'.repeat(EXEC_FILENAME_MAX - 2)}`);
    expect(ex.argv).toEqual(['tool', 'x']);
  });

  it('reports a truncated header and keeps the records before it', () => {
    const buf = Buffer.concat([exitRecord(), exitRecord().subarray(0, 10)]);
    const { records, errors } = decodeBatch(buf);
    expect(records).toHaveLength(1);
    expect(errors).toEqual([{ offset: 144, reason: 'truncated header: 10 bytes left' }]);
  });

  it('stops at a size it cannot trust (zero, or past the end)', () => {
    const zero = exitRecord();
    zero.writeUInt16LE(0, 2);
    expect(decodeBatch(Buffer.concat([exitRecord(), zero, exitRecord()])).records).toHaveLength(1);
    const big = exitRecord();
    big.writeUInt16LE(4000, 2);
    const r = decodeBatch(big);
    expect(r.records).toHaveLength(0);
    expect(r.errors[0].reason).toMatch(/bad record size 4000/);
  });

  it('skips an unknown type, or a record shorter than its type, and goes on', () => {
    const unknown = exitRecord();
    unknown.writeUInt16LE(99, 0);
    const short = exitRecord().subarray(0, 64);
    short.writeUInt16LE(64, 2);
    const { records, errors } = decodeBatch(Buffer.concat([unknown, short, exitRecord(task(), 256)]));
    expect(records.map((r) => r.kind)).toEqual(['exit']);
    expect(errors.map((e) => e.reason)).toEqual(['unknown record type 99', 'record type 3 size 64 below its minimum 144']);
  });

  it('rejects an exec whose filename_len is outside the kernel bounds or runs past its record', () => {
    for (const [len, reason] of [
      [EXEC_FILENAME_MAX + 1, /filename_len 257 is not 1 to 256/],
      [0, /filename_len 0 is not 1 to 256/],
      [200, /filename_len 200 and args_len \d+ exceed record size/],
    ] as const) {
      const ex = execRecord();
      ex.writeUInt32LE(len, cw_exec.fields.filename_len[0]);
      const { records, errors } = decodeBatch(Buffer.concat([ex, exitRecord()]));
      expect(records.map((r) => r.kind)).toEqual(['exit']);
      expect(errors[0].reason).toMatch(reason);
    }
  });

  it('rejects an exec whose args_len runs past its record', () => {
    const ex = execRecord();
    ex.writeUInt32LE(5000, cw_exec.fields.args_len[0]);
    const { records, errors } = decodeBatch(Buffer.concat([ex, exitRecord()]));
    expect(records.map((r) => r.kind)).toEqual(['exit']);
    expect(errors[0].reason).toMatch(/args_len 5000/);
  });

  it('holds the text it decodes flat: a held 45-byte path costs its bytes, not a 32-byte node a char', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const N = 3000;
    const path = (i: number) => `/kubepods/burstable/pod-${String(i).padStart(8, '0')}/ctr-abcdef`;
    const held: string[] = [];
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let k = 0; k < N; k += 250) {
      const batch = Buffer.concat(Array.from({ length: 250 }, (_, j) => cgroupRecord(RecordType.CGROUP_MKDIR, path(k + j), BigInt(k + j))));
      // Only held, never compared or hashed here: either would flatten a chain and hide it.
      for (const r of decodeBatch(batch).records) held.push((r as CgroupRecord).path);
    }
    gc();
    const perPath = (process.memoryUsage().heapUsed - before) / N;
    // Flat: the string (about 64 bytes) and the decoder's cache entry; built char by char it was
    // a chain of 33 nodes (over 1 KB) until something flattened it.
    expect(perPath).toBeLessThan(500);
    expect(held.length).toBe(N);
    expect(held[N - 1]).toBe(path(N - 1));
  });

  it('never throws on garbage', () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.alloc(rnd() % 3000);
      for (let j = 0; j < b.length; j++) b[j] = rnd() & 0xff;
      // Plausible headers now and then, so that the record decoders run on garbage too.
      if (b.length >= 16 && i % 2) {
        b.writeUInt16LE(1 + (rnd() % 7), 0);
        b.writeUInt16LE(Math.min(b.length, 16 + (rnd() % 1500)) & ~7, 2);
      }
      expect(() => decodeBatch(b)).not.toThrow();
    }
  });
});
