// A tiny bbolt file writer for unit tests of src/meta/bolt.ts: pages laid out by hand, the
// format's own way (meta pages 0 and 1, a freelist, leaf and branch pages, inline buckets).

export const PAGE = 4096;

export type Tree = { [key: string]: string | Buffer | Tree };

const isTree = (v: string | Buffer | Tree): v is Tree => typeof v === 'object' && !Buffer.isBuffer(v);

function fnv1a64(b: Buffer): bigint {
  let h = 0xcbf29ce484222325n;
  for (const x of b) {
    h ^= BigInt(x);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

/** A leaf page's bytes (id 0 for an inline bucket), entries in key order. */
export function leafPage(entries: { key: Buffer; value: Buffer; bucket: boolean }[], id = 0n, size?: number): Buffer {
  const sorted = [...entries].sort((a, b) => Buffer.compare(a.key, b.key));
  const head = Buffer.alloc(16 + 16 * sorted.length);
  head.writeBigUInt64LE(id, 0);
  head.writeUInt16LE(0x02, 8);
  head.writeUInt16LE(sorted.length, 10);
  const data: Buffer[] = [];
  let off = head.length;
  sorted.forEach((e, i) => {
    const at = 16 + 16 * i;
    head.writeUInt32LE(e.bucket ? 1 : 0, at);
    head.writeUInt32LE(off - at, at + 4);
    head.writeUInt32LE(e.key.length, at + 8);
    head.writeUInt32LE(e.value.length, at + 12);
    data.push(e.key, e.value);
    off += e.key.length + e.value.length;
  });
  const page = Buffer.concat([head, ...data]);
  return size ? Buffer.concat([page, Buffer.alloc(size - page.length)]) : page;
}

/** A branch page pointing at (first key, child page) pairs. */
export function branchPage(id: bigint, children: { key: Buffer; pgid: bigint }[]): Buffer {
  const head = Buffer.alloc(16 + 16 * children.length);
  head.writeBigUInt64LE(id, 0);
  head.writeUInt16LE(0x01, 8);
  head.writeUInt16LE(children.length, 10);
  const data: Buffer[] = [];
  let off = head.length;
  children.forEach((c, i) => {
    const at = 16 + 16 * i;
    head.writeUInt32LE(off - at, at);
    head.writeUInt32LE(c.key.length, at + 4);
    head.writeBigUInt64LE(c.pgid, at + 8);
    data.push(c.key);
    off += c.key.length;
  });
  const page = Buffer.concat([head, ...data]);
  return Buffer.concat([page, Buffer.alloc(PAGE - page.length)]);
}

/** An inline bucket's value: header {root 0, seq 0} and its leaf page. */
export function inlineBucket(tree: Tree): Buffer {
  return Buffer.concat([Buffer.alloc(16), leafPage(entriesOf(tree))]);
}

/** A bucket value pointing at page `root`. */
export function bucketAt(root: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(root, 0);
  return b;
}

function entriesOf(tree: Tree): { key: Buffer; value: Buffer; bucket: boolean }[] {
  return Object.entries(tree).map(([k, v]) => ({
    key: Buffer.from(k),
    value: isTree(v) ? inlineBucket(v) : Buffer.isBuffer(v) ? v : Buffer.from(v),
    bucket: isTree(v),
  }));
}

export function metaPage(
  id: bigint,
  root: bigint,
  highWater: bigint,
  txid: bigint,
  opts: { badChecksum?: boolean; magic?: number } = {},
): Buffer {
  const p = Buffer.alloc(PAGE);
  p.writeBigUInt64LE(id, 0);
  p.writeUInt16LE(0x04, 8);
  const m = p.subarray(16);
  m.writeUInt32LE(opts.magic ?? 0xed0cdaed, 0);
  m.writeUInt32LE(2, 4);
  m.writeUInt32LE(PAGE, 8);
  m.writeBigUInt64LE(root, 16);
  m.writeBigUInt64LE(2n, 32); // freelist
  m.writeBigUInt64LE(highWater, 40);
  m.writeBigUInt64LE(txid, 48);
  m.writeBigUInt64LE(fnv1a64(m.subarray(0, 56)) ^ (opts.badChecksum ? 1n : 0n), 56);
  return p;
}

function freelist(): Buffer {
  const p = Buffer.alloc(PAGE);
  p.writeBigUInt64LE(2n, 0);
  p.writeUInt16LE(0x10, 8);
  return p;
}

/**
 * A file whose root bucket (page 3) holds `root` as inline buckets and values, plus extra pages
 * from 4 on (their ids must follow). meta0 is the newer (txid 2) unless told otherwise.
 */
export function boltFile(root: Tree, extra: Buffer[] = [], opts: { meta0?: Parameters<typeof metaPage>[4] } = {}): Buffer {
  const high = BigInt(4 + extra.length);
  return Buffer.concat([
    metaPage(0n, 3n, high, 2n, opts.meta0),
    metaPage(1n, 3n, high, 1n),
    freelist(),
    leafPage(entriesOf(root), 3n, PAGE),
    ...extra,
  ]);
}

export { entriesOf };
