// EventBatch and Ack of proto/ctrwatch/v1/collector.proto, written and read by hand: a batch
// carries each event's bytes as the spool holds them (repeated Event is, on the wire, a
// repeated length-delimited field), so nothing is decoded or encoded again on the way.
// test/unit/sink-local.test.ts checks both against protobufjs reading collector.proto.

export interface BatchHeader {
  node: string;
  bootId: string;
  instanceId: string;
  floorSeq: bigint;
  batchId: bigint;
}

export interface Ack {
  instanceId: string;
  seq: bigint;
  batchId: bigint;
  written: number;
  duplicates: number;
}

/** The gRPC method the sensor streams batches on. */
export const SHIP_PATH = '/ctrwatch.v1.Collector/Ship';

export class WireError extends Error {
  override name = 'WireError';
}

class W {
  private parts: Buffer[] = [];
  private cur = Buffer.allocUnsafe(256);
  private pos = 0;
  private room(n: number): void {
    if (this.pos + n <= this.cur.length) return;
    this.parts.push(this.cur.subarray(0, this.pos));
    this.cur = Buffer.allocUnsafe(Math.max(256, n));
    this.pos = 0;
  }
  varint(v: bigint | number): this {
    let x = BigInt(v);
    this.room(10);
    while (x > 127n) {
      this.cur[this.pos++] = Number(x & 127n) | 128;
      x >>= 7n;
    }
    this.cur[this.pos++] = Number(x);
    return this;
  }
  tag(id: number, wt: number): this {
    return this.varint((id << 3) | wt);
  }
  bytes(b: Buffer): this {
    this.varint(b.length);
    this.parts.push(this.cur.subarray(0, this.pos), b);
    this.cur = this.cur.subarray(this.pos);
    this.pos = 0;
    return this;
  }
  string(id: number, s: string): this {
    return s ? this.tag(id, 2).bytes(Buffer.from(s, 'utf8')) : this;
  }
  uint(id: number, v: bigint | number): this {
    return v ? this.tag(id, 0).varint(v) : this;
  }
  finish(): Buffer {
    this.parts.push(this.cur.subarray(0, this.pos));
    return Buffer.concat(this.parts);
  }
}

const varintSize = (n: number) => (n < 1 << 7 ? 1 : n < 1 << 14 ? 2 : n < 1 << 21 ? 3 : n < 1 << 28 ? 4 : 5);

export function encodeBatch(h: BatchHeader, events: readonly Buffer[]): Buffer {
  const head = new W().string(1, h.node).string(2, h.bootId).string(3, h.instanceId).uint(4, h.floorSeq).uint(5, h.batchId).finish();
  // The events, the bulk of it, straight into one buffer of the exact size.
  let size = head.length;
  for (const e of events) size += 1 + varintSize(e.length) + e.length;
  const out = Buffer.allocUnsafe(size);
  let pos = head.copy(out, 0);
  for (const e of events) {
    out[pos++] = (6 << 3) | 2;
    let n = e.length;
    while (n > 127) {
      out[pos++] = (n & 127) | 128;
      n >>>= 7;
    }
    out[pos++] = n;
    pos += e.copy(out, pos);
  }
  return out;
}

export function encodeAck(a: Ack): Buffer {
  return new W().string(1, a.instanceId).uint(2, a.seq).uint(3, a.batchId).uint(4, a.written).uint(5, a.duplicates).finish();
}

/** Reads the fields of one message; calls `on` with each field's number and value. */
function readFields(buf: Buffer, what: string, on: (id: number, v: bigint | Buffer) => void): void {
  let pos = 0;
  /** A varint that fits 53 bits as a number (tags, lengths: every one in practice), else -1 with pos unmoved. */
  const small = (): number => {
    let x = 0;
    let mul = 1;
    for (let i = pos; i < buf.length && i - pos < 7; i++) {
      const b = buf[i]!;
      x += (b & 127) * mul;
      if (b < 128) {
        pos = i + 1;
        return x;
      }
      mul *= 128;
    }
    return -1;
  };
  const varint = (): bigint => {
    let x = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= buf.length) throw new WireError(`${what}: truncated varint at byte ${pos}`);
      if (shift > 63n) throw new WireError(`${what}: varint too long at byte ${pos}`);
      const b = buf[pos++]!;
      x |= BigInt(b & 127) << shift;
      if (b < 128) return x;
    }
  };
  const num = (): number => {
    const n = small();
    return n >= 0 ? n : Number(varint());
  };
  while (pos < buf.length) {
    const tag = num();
    const id = Math.floor(tag / 8);
    if (id === 0) throw new WireError(`${what}: field number 0 at byte ${pos}`);
    switch (tag & 7) {
      case 0:
        on(id, varint());
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const len = num();
        if (pos + len > buf.length) throw new WireError(`${what}: field ${id} runs past the end (${len} bytes at ${pos} of ${buf.length})`);
        on(id, buf.subarray(pos, pos + len));
        pos += len;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new WireError(`${what}: wire type ${tag & 7} at byte ${pos}`);
    }
    if (pos > buf.length) throw new WireError(`${what}: truncated`);
  }
}

const str = (v: bigint | Buffer, what: string): string => {
  if (!Buffer.isBuffer(v)) throw new WireError(`${what}: string expected`);
  return v.toString('utf8');
};
const num = (v: bigint | Buffer, what: string): bigint => {
  if (Buffer.isBuffer(v)) throw new WireError(`${what}: integer expected`);
  return v;
};

export function decodeBatch(buf: Buffer): { header: BatchHeader; events: Buffer[] } {
  const header: BatchHeader = { node: '', bootId: '', instanceId: '', floorSeq: 0n, batchId: 0n };
  const events: Buffer[] = [];
  readFields(buf, 'EventBatch', (id, v) => {
    if (id === 1) header.node = str(v, 'EventBatch.node');
    else if (id === 2) header.bootId = str(v, 'EventBatch.boot_id');
    else if (id === 3) header.instanceId = str(v, 'EventBatch.instance_id');
    else if (id === 4) header.floorSeq = num(v, 'EventBatch.floor_seq');
    else if (id === 5) header.batchId = num(v, 'EventBatch.batch_id');
    else if (id === 6) {
      if (!Buffer.isBuffer(v)) throw new WireError('EventBatch.events: message expected');
      events.push(v);
    }
  });
  return { header, events };
}

export function decodeAck(buf: Buffer): Ack {
  const a: Ack = { instanceId: '', seq: 0n, batchId: 0n, written: 0, duplicates: 0 };
  readFields(buf, 'Ack', (id, v) => {
    if (id === 1) a.instanceId = str(v, 'Ack.instance_id');
    else if (id === 2) a.seq = num(v, 'Ack.seq');
    else if (id === 3) a.batchId = num(v, 'Ack.batch_id');
    else if (id === 4) a.written = Number(num(v, 'Ack.written'));
    else if (id === 5) a.duplicates = Number(num(v, 'Ack.duplicates'));
  });
  return a;
}
