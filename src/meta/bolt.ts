// A read-only reader of bbolt files (containerd's metadata store, meta.db), enough to walk
// nested buckets and read their keys. Layout, from the bbolt format: every page starts with
// {id u64, flags u16, count u16, overflow u32}; pages 0 and 1 are the two meta pages
// {magic, version, pageSize, flags, root bucket {pgid, seq}, freelist, pgid, txid, checksum};
// branch elements are {pos u32, ksize u32, pgid u64}, leaf elements {flags u32, pos u32,
// ksize u32, vsize u32} with pos counted from the element itself; a bucket's value starts with
// {root pgid u64, sequence u64} and, when root is 0, holds its one (inline) page right after.
//
// The file is another process's live store: it is read with pread, page by page, never mapped
// and never locked, so a page can change under us. Every page is checked (id, flags, bounds)
// and a walk is capped in pages and bytes; a torn read is an error, never garbage.

import * as fs from 'node:fs';

const MAGIC = 0xed0cdaed;
const PAGE_HEADER = 16;
const ELEMENT = 16;
const BRANCH = 0x01;
const LEAF = 0x02;
const META = 0x04;
const BUCKET_LEAF = 0x01;
const MAX_PAGE_SIZE = 64 * 1024;
const MIN_PAGE_SIZE = 512;

export class BoltError extends Error {
  override readonly name = 'BoltError';
  constructor(
    readonly file: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: bolt: ${detail}`, options);
  }
}

export interface BoltLimits {
  /** Pages read in one lookup, at most. */
  maxPages: number;
  /** Largest value returned (and largest page run read), in bytes. */
  maxValueBytes: number;
}

export const BOLT_LIMITS: BoltLimits = { maxPages: 4096, maxValueBytes: 4 * 1024 * 1024 };

/** One page's bytes (with its overflow pages), or an inline bucket's page. */
interface Page {
  buf: Buffer;
  flags: number;
  count: number;
}

/** What a bucket's key holds: a nested bucket (its root) or a plain value. */
type Entry = { bucket: { root: bigint; inline?: Buffer } } | { value: Buffer };

function fnv1a64(b: Buffer): bigint {
  let h = 0xcbf29ce484222325n;
  for (const x of b) {
    h ^= BigInt(x);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

/** A bbolt file opened for reading; close() when done. */
export class BoltFile {
  private readonly fd: number;
  private pageSize = 4096;
  private root = 0n;
  private highWater = 0n;
  private pagesRead = 0;

  constructor(
    /** A path, or /proc/<pid>/fd/<n> of a process that holds the file open. */
    readonly file: string,
    private readonly limits: BoltLimits = BOLT_LIMITS,
  ) {
    try {
      this.fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
    } catch (err) {
      throw new BoltError(file, `cannot open (${(err as NodeJS.ErrnoException).code})`, { cause: err });
    }
    try {
      if (!fs.fstatSync(this.fd).isFile()) throw new BoltError(file, 'not a regular file');
      this.readMeta();
    } catch (err) {
      fs.closeSync(this.fd);
      throw err;
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private pread(len: number, pos: number): Buffer {
    const b = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const n = fs.readSync(this.fd, b, got, len - got, pos + got);
      if (n === 0) break;
      got += n;
    }
    if (got < len) throw new BoltError(this.file, `short read at ${pos}`);
    return b;
  }

  /** The newer of the two meta pages whose checksum holds. */
  private readMeta(): void {
    const first = this.pread(MIN_PAGE_SIZE, 0);
    const ps = first.readUInt32LE(PAGE_HEADER + 8);
    if (first.readUInt32LE(PAGE_HEADER) !== MAGIC) throw new BoltError(this.file, 'not a bolt file (bad magic)');
    if (ps < MIN_PAGE_SIZE || ps > MAX_PAGE_SIZE || (ps & (ps - 1)) !== 0) throw new BoltError(this.file, `bad page size ${ps}`);
    this.pageSize = ps;
    let best: { txid: bigint; root: bigint; pgid: bigint } | undefined;
    for (const p of [0, 1]) {
      const m = this.pread(64, p * ps + PAGE_HEADER);
      if ((this.pread(PAGE_HEADER, p * ps).readUInt16LE(8) & META) === 0) continue;
      if (m.readUInt32LE(0) !== MAGIC || m.readUInt32LE(4) !== 2) continue;
      if (fnv1a64(m.subarray(0, 56)) !== m.readBigUInt64LE(56)) continue;
      const txid = m.readBigUInt64LE(48);
      if (!best || txid > best.txid) best = { txid, root: m.readBigUInt64LE(16), pgid: m.readBigUInt64LE(40) };
    }
    if (!best) throw new BoltError(this.file, 'no valid meta page');
    this.root = best.root;
    this.highWater = best.pgid;
  }

  private page(id: bigint): Page {
    if (++this.pagesRead > this.limits.maxPages) throw new BoltError(this.file, `more than ${this.limits.maxPages} pages read`);
    if (id < 2n || id >= this.highWater) throw new BoltError(this.file, `page ${id} out of range`);
    const pos = Number(id) * this.pageSize;
    const head = this.pread(PAGE_HEADER, pos);
    if (head.readBigUInt64LE(0) !== id)
      throw new BoltError(this.file, `page ${id} names itself ${head.readBigUInt64LE(0)} (changed under us?)`);
    const overflow = head.readUInt32LE(12);
    const len = (overflow + 1) * this.pageSize;
    if (len > this.limits.maxValueBytes + this.pageSize) throw new BoltError(this.file, `page ${id} spans ${overflow + 1} pages`);
    const buf = overflow ? this.pread(len, pos) : Buffer.concat([head, this.pread(this.pageSize - PAGE_HEADER, pos + PAGE_HEADER)]);
    return { buf, flags: head.readUInt16LE(8), count: head.readUInt16LE(10) };
  }

  /** Key and value bytes of leaf element i, bounds-checked. */
  private leafElement(p: Page, i: number): { flags: number; key: Buffer; value: Buffer } {
    const at = PAGE_HEADER + i * ELEMENT;
    if (at + ELEMENT > p.buf.length) throw new BoltError(this.file, 'leaf element out of page');
    const flags = p.buf.readUInt32LE(at);
    const start = at + p.buf.readUInt32LE(at + 4);
    const ksize = p.buf.readUInt32LE(at + 8);
    const vsize = p.buf.readUInt32LE(at + 12);
    if (start + ksize + vsize > p.buf.length) throw new BoltError(this.file, 'leaf key or value out of page');
    return { flags, key: p.buf.subarray(start, start + ksize), value: p.buf.subarray(start + ksize, start + ksize + vsize) };
  }

  private branchElement(p: Page, i: number): { key: Buffer; pgid: bigint } {
    const at = PAGE_HEADER + i * ELEMENT;
    if (at + ELEMENT > p.buf.length) throw new BoltError(this.file, 'branch element out of page');
    const start = at + p.buf.readUInt32LE(at);
    const ksize = p.buf.readUInt32LE(at + 4);
    if (start + ksize > p.buf.length) throw new BoltError(this.file, 'branch key out of page');
    return { key: p.buf.subarray(start, start + ksize), pgid: p.buf.readBigUInt64LE(at + 8) };
  }

  private pageOf(b: { root: bigint; inline?: Buffer }): Page {
    if (b.inline) {
      if (b.inline.length < PAGE_HEADER) throw new BoltError(this.file, 'inline bucket too short');
      return { buf: b.inline, flags: b.inline.readUInt16LE(8), count: b.inline.readUInt16LE(10) };
    }
    return this.page(b.root);
  }

  private entryOf(flags: number, value: Buffer): Entry {
    if (!(flags & BUCKET_LEAF)) return { value };
    if (value.length < 16) throw new BoltError(this.file, 'bucket header too short');
    const root = value.readBigUInt64LE(0);
    return { bucket: root === 0n ? { root, inline: value.subarray(16) } : { root } };
  }

  /** Every (key, entry) of a bucket, in key order, at most max of them. */
  private *walk(b: { root: bigint; inline?: Buffer }): Generator<[Buffer, Entry]> {
    const p = this.pageOf(b);
    if (p.flags & LEAF) {
      for (let i = 0; i < p.count; i++) {
        const e = this.leafElement(p, i);
        yield [e.key, this.entryOf(e.flags, e.value)];
      }
    } else if (p.flags & BRANCH) {
      for (let i = 0; i < p.count; i++) yield* this.walk({ root: this.branchElement(p, i).pgid });
    } else throw new BoltError(this.file, `page of flags 0x${p.flags.toString(16)} where a bucket page was expected`);
  }

  /** One key of a bucket, by descending the B+tree. */
  private get(b: { root: bigint; inline?: Buffer }, key: Buffer): Entry | undefined {
    let p = this.pageOf(b);
    for (let depth = 0; depth < 32; depth++) {
      if (p.flags & LEAF) {
        for (let i = 0; i < p.count; i++) {
          const e = this.leafElement(p, i);
          if (e.key.equals(key)) return this.entryOf(e.flags, e.value);
        }
        return undefined;
      }
      if (!(p.flags & BRANCH)) throw new BoltError(this.file, `page of flags 0x${p.flags.toString(16)} in a bucket's tree`);
      // The last element whose key is <= key (the first when key sorts before all).
      let child = -1;
      for (let i = 0; i < p.count; i++) {
        if (Buffer.compare(this.branchElement(p, i).key, key) <= 0) child = i;
        else break;
      }
      p = this.page(this.branchElement(p, Math.max(child, 0)).pgid);
    }
    throw new BoltError(this.file, 'tree deeper than 32');
  }

  /** The bucket at path (names of nested buckets from the root), or undefined when any is missing. */
  private bucket(path: readonly string[]): { root: bigint; inline?: Buffer } | undefined {
    let b: { root: bigint; inline?: Buffer } = { root: this.root };
    for (const name of path) {
      const e = this.get(b, Buffer.from(name));
      if (!e) return undefined;
      if (!('bucket' in e)) throw new BoltError(this.file, `${path.join('/')}: '${name}' is a value, not a bucket`);
      b = e.bucket;
    }
    return b;
  }

  /** A value at path + key, undefined when missing. Each call is one lookup under the page cap. */
  value(path: readonly string[], key: string): Buffer | undefined {
    this.pagesRead = 0;
    const b = this.bucket(path);
    const e = b && this.get(b, Buffer.from(key));
    if (!e) return undefined;
    if (!('value' in e)) throw new BoltError(this.file, `${[...path, key].join('/')} is a bucket, not a value`);
    if (e.value.length > this.limits.maxValueBytes) throw new BoltError(this.file, `${key}: value of ${e.value.length} bytes`);
    return Buffer.from(e.value);
  }

  /** The plain values of the bucket at path (nested buckets skipped), at most max; undefined when missing. */
  values(path: readonly string[], max: number): { entries: [string, Buffer][]; truncated: boolean } | undefined {
    this.pagesRead = 0;
    const b = this.bucket(path);
    if (!b) return undefined;
    const entries: [string, Buffer][] = [];
    for (const [k, e] of this.walk(b)) {
      if (!('value' in e)) continue;
      if (entries.length >= max) return { entries, truncated: true };
      entries.push([k.toString('utf8'), Buffer.from(e.value)]);
    }
    return { entries, truncated: false };
  }

  /** Names of the nested buckets of the bucket at path, at most max; undefined when it is missing. */
  buckets(path: readonly string[], max: number): { names: string[]; truncated: boolean } | undefined {
    this.pagesRead = 0;
    const b = this.bucket(path);
    if (!b) return undefined;
    const names: string[] = [];
    for (const [k, e] of this.walk(b)) {
      if (!('bucket' in e)) continue;
      if (names.length >= max) return { names, truncated: true };
      names.push(k.toString('utf8'));
    }
    return { names, truncated: false };
  }
}
