import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BoltError, BoltFile } from '../../src/meta/bolt';
import { boltFile, branchPage, bucketAt, entriesOf, leafPage, PAGE } from '../support/bolt-writer';

const dir = mkdtempSync(join(tmpdir(), 'cw-bolt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(b: Buffer): string {
  const p = join(dir, `db${++n}`);
  writeFileSync(p, b);
  return p;
}
function open(b: Buffer, limits?: ConstructorParameters<typeof BoltFile>[1]): BoltFile {
  return new BoltFile(file(b), limits);
}

describe('bolt reader', () => {
  it('walks nested inline buckets and reads values and bucket names', () => {
    const db = open(boltFile({ v1: { ns1: { containers: { a: { labels: { x: '1', y: '2' } }, b: {} } }, version: 'v' } }));
    expect(db.buckets(['v1', 'ns1', 'containers'], 10)).toEqual({ names: ['a', 'b'], truncated: false });
    expect(db.values(['v1', 'ns1', 'containers', 'a', 'labels'], 10)?.entries.map(([k, v]) => [k, v.toString()])).toEqual([
      ['x', '1'],
      ['y', '2'],
    ]);
    expect(db.value(['v1', 'ns1', 'containers', 'a', 'labels'], 'y')?.toString()).toBe('2');
    expect(db.value(['v1', 'ns1', 'containers', 'a', 'labels'], 'z')).toBeUndefined();
    expect(db.values(['v1', 'nope'], 10)).toBeUndefined();
    expect(db.values(['v1', 'ns1', 'containers', 'a', 'labels'], 1)).toMatchObject({ truncated: true });
    expect(() => db.value(['v1'], 'ns1')).toThrow(/is a bucket, not a value/);
    expect(() => db.values(['v1', 'ns1', 'containers', 'a', 'labels', 'x'], 1)).toThrow(/is a value, not a bucket/);
    db.close();
  });

  it('descends branch pages to the leaf that holds a key', () => {
    // containers: a bucket on its own pages: branch 4 over leaves 5 (a..) and 6 (m..).
    const left = leafPage(entriesOf({ aa: { labels: { k: 'left' } }, ab: {} }), 5n, PAGE);
    const right = leafPage(entriesOf({ ma: { labels: { k: 'right' } }, zz: {} }), 6n, PAGE);
    const branch = branchPage(4n, [
      { key: Buffer.from('aa'), pgid: 5n },
      { key: Buffer.from('ma'), pgid: 6n },
    ]);
    const root = { v1: { ns: { containers: Buffer.alloc(0) } } };
    // Put the non-inline bucket value in by hand: entriesOf makes inline ones.
    const b = boltFile(root, [branch, left, right]);
    const bytes = patchValue(b, 'containers', bucketAt(4n));
    const db = open(bytes);
    expect(db.value(['v1', 'ns', 'containers', 'ma', 'labels'], 'k')?.toString()).toBe('right');
    expect(db.value(['v1', 'ns', 'containers', 'aa', 'labels'], 'k')?.toString()).toBe('left');
    expect(db.value(['v1', 'ns', 'containers', 'a0', 'labels'], 'k')).toBeUndefined();
    expect(db.buckets(['v1', 'ns', 'containers'], 10)?.names).toEqual(['aa', 'ab', 'ma', 'zz']);
    db.close();
  });

  it('takes the newest meta page whose checksum holds', () => {
    const good = open(boltFile({ k: 'v' }));
    expect(good.value([], 'k')?.toString()).toBe('v');
    good.close();
    const fallback = open(boltFile({ k: 'v' }, [], { meta0: { badChecksum: true } }));
    expect(fallback.value([], 'k')?.toString()).toBe('v');
    fallback.close();
  });

  it('refuses what is not a bolt file or changed under it, with the file named', () => {
    expect(() => open(Buffer.alloc(PAGE * 4))).toThrow(BoltError);
    expect(() => open(Buffer.from('{"not":"bolt"}'.padEnd(600)))).toThrow(/bad magic/);
    const noMeta = boltFile({}, [], { meta0: { badChecksum: true } });
    noMeta[PAGE + 16 + 56] ^= 1; // meta1's checksum too
    expect(() => open(noMeta)).toThrow(/no valid meta page/);
    expect(() => open(boltFile({}).subarray(0, PAGE))).toThrow(/short read/);
    const p = file(Buffer.alloc(10));
    expect(() => new BoltFile(p)).toThrow(p);
    expect(() => new BoltFile(join(dir, 'missing'))).toThrow(/cannot open \(ENOENT\)/);
    // A page that names another id: rewritten meanwhile.
    const torn = boltFile({ v1: {} });
    torn.writeBigUInt64LE(9n, 3 * PAGE);
    expect(() => open(torn).buckets(['v1'], 1)).toThrow(/page 3 names itself 9/);
    // A bucket pointing past the file's high-water mark.
    const far = patchValue(boltFile({ b: Buffer.alloc(0) }), 'b', bucketAt(99n), true);
    expect(() => open(far).buckets(['b'], 1)).toThrow(/page 99 out of range/);
  });

  it('reads at most maxPages pages a lookup', () => {
    const left = leafPage(entriesOf({ a: 'x' }), 5n, PAGE);
    const branch = branchPage(4n, [{ key: Buffer.from('a'), pgid: 5n }]);
    const bytes = patchValue(boltFile({ c: Buffer.alloc(0) }, [branch, left]), 'c', bucketAt(4n), true);
    expect(open(bytes).value(['c'], 'a')?.toString()).toBe('x');
    expect(() => open(bytes, { maxPages: 1, maxValueBytes: 1 << 20 }).value(['c'], 'a')).toThrow(/more than 1 pages/);
  });
});

/**
 * Rewrites the (empty) value of key `key` in the leaf pages of b into a bucket reference:
 * the writer only makes inline buckets. `top`: the key is in the root page itself.
 */
function patchValue(b: Buffer, key: string, value: Buffer, top = false): Buffer {
  const k = Buffer.from(key);
  // Find the leaf element of key with an empty value, in the root page or its inline buckets.
  const at = b.indexOf(k, 3 * PAGE);
  if (at < 0) throw new Error('key not found');
  const out = Buffer.concat([b.subarray(0, at + k.length), value, b.subarray(at + k.length)]);
  // The value grew: fix vsize and the bucket flag in its element, and every size up the chain.
  // Elements are found by scanning for one whose key offset lands on `at`.
  const fix = (pageStart: number) => {
    const count = out.readUInt16LE(pageStart + 10);
    for (let i = 0; i < count; i++) {
      const e = pageStart + 16 + 16 * i;
      const pos = e + out.readUInt32LE(e + 4);
      if (pos === at) {
        out.writeUInt32LE(1, e);
        out.writeUInt32LE(value.length, e + 12);
      } else if (pos > at) out.writeUInt32LE(out.readUInt32LE(e + 4) + value.length, e + 4);
      else if (pos + out.readUInt32LE(e + 8) + out.readUInt32LE(e + 12) > at) {
        // An inline bucket that contains the key: its value grew, and its own page too.
        out.writeUInt32LE(out.readUInt32LE(e + 12) + value.length, e + 12);
        fix(pos + out.readUInt32LE(e + 8) + 16);
      }
    }
  };
  fix(3 * PAGE);
  if (top) return out.subarray(0, out.length - value.length).length === b.length ? trim(out, value.length) : out;
  return trim(out, value.length);
}

/** Keep pages aligned: drop as many zero bytes from the root page's padding as were inserted. */
function trim(out: Buffer, n: number): Buffer {
  const end = 4 * PAGE;
  return Buffer.concat([out.subarray(0, end), out.subarray(end + n)]);
}
