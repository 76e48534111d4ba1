// `ctrwatch collect`: the reference collector. Serves Collector.Ship
// (proto/ctrwatch/v1/collector.proto) to many sensors at once, writes each node's events as
// JSON lines under OUT/<node>/, de-duplicates on (node, boot, instance, seq), and acknowledges
// a batch only once it is durably written (node-log.ts). A stream that sends something that
// is not a valid batch, or lacks the token, is ended with a clear status; the others go on.

import * as grpc from '@grpc/grpc-js';
import { timingSafeEqual } from 'node:crypto';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { loadEventSchema, type EventSchema } from '../proto/schema';
import { compileEventCodec, JsonOut, type EventCodec, type JsonHead } from '../proto/codec';
import { isLoopback, readTokens, type TlsFiles } from '../proto/credentials';
import { serverCredentials } from '../proto/grpc-credentials';
import { decodeBatch, encodeAck, SHIP_PATH, type Ack } from '../proto/wire';
import { SilenceWatch, silentEvent } from './silence';
import { NodeLog } from './node-log';

export interface CollectorOptions {
  /** HOST:PORT (port 0: any free port). */
  listen: string;
  /** Output directory: one subdirectory a node. */
  outDir: string;
  logger: Logger;
  /** Server certificate and key; with ca, client certificates are required and checked. */
  tls?: TlsFiles;
  /** Bearer tokens accepted (one a line). */
  tokenFile?: string;
  /** Listen in clear text on an address that is not loopback. */
  insecurePlaintext?: boolean;
  /** Rotate a node's file past this size. Default 256 MiB. */
  maxFileBytes?: number;
  /** Batches a stream may have unacknowledged before the collector stops reading it. */
  maxPendingBatches?: number;
  schema?: EventSchema;
  /**
   * Called with each batch's new events (those the windows did not already hold) before they
   * are appended to the node's log, and with each sensorSilent the collector writes. Synchronous;
   * must not throw (the console's store: src/console/store.ts).
   */
  onEvents?: (header: { node: string; bootId: string; instanceId: string }, events: Record<string, unknown>[]) => void;
}

export interface CollectorStats {
  streams: number;
  streamsTotal: number;
  batches: number;
  written: number;
  duplicates: number;
  /** Streams ended by the collector, by reason. */
  refused: Record<string, number>;
  nodes: number;
  /** sensorSilent events raised: sensors whose stats stopped for two intervals. */
  silent: number;
}

export interface RunningCollector {
  /** The bound address, HOST:PORT. */
  readonly address: string;
  readonly port: number;
  stats(): CollectorStats;
  /** Stop accepting, end the streams, finish commits. */
  close(): Promise<void>;
}

export class CollectorError extends Error {
  override name = 'CollectorError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A batch that is not acceptable: the stream ends with INVALID_ARGUMENT and this message. */
class BatchError extends CollectorError {
  override name = 'BatchError';
}

const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

interface CheckedEvent {
  seq: bigint;
  bytes: Buffer;
  /** Its JSON line (with the newline) in the batch's lines. */
  start: number;
  end: number;
  /** timeUnixNano of a sensorStats event. */
  statsAt?: bigint;
}

interface Accepted {
  ack: Ack;
  durable: Promise<void>;
}

class Collector {
  private readonly log: Logger;
  private readonly codec: EventCodec;
  private readonly tokens: Buffer[];
  private readonly nodes = new Map<string, Promise<NodeLog>>();
  private readonly calls = new Set<grpc.ServerDuplexStream<Buffer, Buffer>>();
  private readonly counters: CollectorStats = {
    streams: 0,
    streamsTotal: 0,
    batches: 0,
    written: 0,
    duplicates: 0,
    refused: {},
    nodes: 0,
    silent: 0,
  };
  private readonly silence = new SilenceWatch();
  private readonly silenceTimer: NodeJS.Timeout;

  constructor(private readonly o: CollectorOptions) {
    this.log = o.logger.child({ component: 'collector' });
    this.codec = compileEventCodec(o.schema ?? loadEventSchema());
    this.tokens = o.tokenFile ? readTokens(o.tokenFile).map((t) => Buffer.from(`Bearer ${t}`)) : [];
    this.silenceTimer = setInterval(() => this.raiseSilent(Date.now()), 1000).unref();
  }

  /** A sensorSilent line in the node's log for each sensor whose stats stopped (see silence.ts). */
  private raiseSilent(nowMs: number): void {
    for (const s of this.silence.check(nowMs)) {
      this.counters.silent++;
      this.log.warn({ node: s.node, bootId: s.bootId, instance: s.instanceId, silentForMs: s.silentForMs }, 'sensor silent');
      const ev = silentEvent(s, nowMs);
      this.o.onEvents?.({ node: s.node, bootId: s.bootId, instanceId: s.instanceId }, [ev]);
      this.nodeLog(s.node)
        .then((l) => l.append(`${JSON.stringify(ev)}\n`, 1))
        .catch((err: unknown) => this.log.error({ err, node: s.node }, 'sensorSilent not written'));
    }
  }

  stats(): CollectorStats {
    return { ...this.counters, refused: { ...this.counters.refused }, streams: this.calls.size, nodes: this.nodes.size };
  }

  private authorized(md: grpc.Metadata): boolean {
    if (!this.tokens.length) return true;
    const got = md.get('authorization')[0];
    if (typeof got !== 'string') return false;
    const b = Buffer.from(got);
    return this.tokens.some((t) => t.length === b.length && timingSafeEqual(t, b));
  }

  private nodeLog(node: string): Promise<NodeLog> {
    let p = this.nodes.get(node);
    if (!p) {
      p = NodeLog.open({ dir: path.join(this.o.outDir, node), maxFileBytes: this.o.maxFileBytes ?? 256 << 20, logger: this.o.logger });
      p.catch(() => this.nodes.delete(node));
      this.nodes.set(node, p);
    }
    return p;
  }

  /** The batch's header and events, each checked; a BatchError names the first that is not acceptable. */
  private checked(buf: Buffer, n: number): { h: ReturnType<typeof decodeBatch>['header']; events: CheckedEvent[]; lines: Buffer } {
    let batch: ReturnType<typeof decodeBatch>;
    try {
      batch = decodeBatch(buf);
    } catch (err) {
      throw new BatchError(`message ${n} is not an EventBatch: ${(err as Error).message}`, { cause: err });
    }
    const h = batch.header;
    if (!NODE_RE.test(h.node))
      throw new BatchError(`batch ${h.batchId}: node ${JSON.stringify(h.node.slice(0, 80))} is not a valid node name`);
    if (!ID_RE.test(h.bootId)) throw new BatchError(`batch ${h.batchId}: boot_id ${JSON.stringify(h.bootId.slice(0, 80))} is not valid`);
    if (!ID_RE.test(h.instanceId))
      throw new BatchError(`batch ${h.batchId}: instance_id ${JSON.stringify(h.instanceId.slice(0, 80))} is not valid`);
    const events: CheckedEvent[] = [];
    // Every event's JSON line into one buffer, straight from its bytes (codec-json.ts).
    const out = new JsonOut(Math.max(4096, buf.length * 2));
    const head: JsonHead = { seq: undefined, timeUnixNano: undefined, node: '', bootId: '', kind: undefined };
    let prev = 0n;
    for (const [i, bytes] of batch.events.entries()) {
      const start = out.pos;
      try {
        this.codec.writeJson(bytes, out, head);
      } catch (err) {
        throw new BatchError(`batch ${h.batchId}, event ${i}: ${(err as Error).message}`, { cause: err });
      }
      out.byte(10);
      const seq = head.seq !== undefined ? BigInt(head.seq) : 0n;
      if (seq <= prev)
        throw new BatchError(`batch ${h.batchId}, event ${i}: seq ${seq} does not follow ${prev} (seq must start at 1 and increase)`);
      if (head.node !== h.node || head.bootId !== h.bootId)
        throw new BatchError(
          `batch ${h.batchId}, event ${i}: node/boot ${head.node}/${head.bootId} differ from the batch's ${h.node}/${h.bootId}`,
        );
      if (seq < h.floorSeq) throw new BatchError(`batch ${h.batchId}, event ${i}: seq ${seq} below the batch's floor_seq ${h.floorSeq}`);
      prev = seq;
      const stats = head.kind === 'sensorStats' && head.timeUnixNano !== undefined && head.timeUnixNano !== '0';
      events.push({ seq, bytes, start, end: out.pos, statsAt: stats ? BigInt(head.timeUnixNano!) : undefined });
    }
    return { h, events, lines: out.buf };
  }

  /** Check a whole batch, then take its new events into the node's log. */
  private async accept(buf: Buffer, n: number): Promise<Accepted> {
    const { h, events, lines } = this.checked(buf, n);
    const prev = events.length ? events[events.length - 1].seq : 0n;
    for (const e of events) if (e.statsAt !== undefined) this.silence.stats(h.node, h.bootId, h.instanceId, e.statsAt, Date.now());
    const log = await this.nodeLog(h.node);
    // From here to append(): synchronous, so the window and the lines queued stay in step.
    const win = log.window(`${h.bootId}/${h.instanceId}`);
    win.settle(h.floorSeq);
    let written = 0;
    const fresh: Record<string, unknown>[] = [];
    // The lines of new events: the whole buffer when all are new (the common case), else their runs.
    const runs: Buffer[] = [];
    let runStart = -1;
    let runEnd = -1;
    for (const e of events) {
      if (!win.accept(e.seq)) continue;
      written++;
      if (this.o.onEvents) fresh.push(this.codec.decode(e.bytes));
      if (e.start === runEnd) runEnd = e.end;
      else {
        if (runStart >= 0) runs.push(lines.subarray(runStart, runEnd));
        runStart = e.start;
        runEnd = e.end;
      }
    }
    if (runStart >= 0) runs.push(lines.subarray(runStart, runEnd));
    const text = runs.length === 1 ? runs[0]! : Buffer.concat(runs);
    // Before the log's commit, so the batch's acknowledgement also waits for it (src/console/store.ts).
    this.o.onEvents?.(h, fresh);
    const duplicates = events.length - written;
    this.counters.batches++;
    this.counters.written += written;
    this.counters.duplicates += duplicates;
    const durable = log.append(text, written);
    return {
      ack: { instanceId: h.instanceId, seq: prev || (h.floorSeq > 0n ? h.floorSeq - 1n : 0n), batchId: h.batchId, written, duplicates },
      durable,
    };
  }

  // eslint-disable-next-line max-lines-per-function -- one stream's life: its auth, ordered acks and close share the stream's state
  readonly ship = (call: grpc.ServerDuplexStream<Buffer, Buffer>): void => {
    const peer = call.getPeer();
    const log = this.log.child({ peer });
    const refuse = (code: grpc.status, reason: string, details: string) => {
      this.counters.refused[reason] = (this.counters.refused[reason] ?? 0) + 1;
      log.warn({ reason, details }, 'stream refused');
      call.emit('error', { code, details });
    };
    if (!this.authorized(call.metadata))
      return refuse(grpc.status.UNAUTHENTICATED, 'unauthenticated', 'missing or wrong bearer token (authorization: Bearer <token>)');
    this.calls.add(call);
    this.counters.streamsTotal++;
    call.sendMetadata(new grpc.Metadata());
    const max = this.o.maxPendingBatches ?? 8;
    let received = 0;
    let pending = 0;
    let dead = false;
    let accepting: Promise<unknown> = Promise.resolve();
    let acking: Promise<void> = Promise.resolve();
    const finish = () => this.calls.delete(call);
    call.on('cancelled', () => {
      dead = true;
      finish();
    });
    call.on('error', () => {
      dead = true;
      finish();
    });
    call.on('data', (buf: Buffer) => {
      if (dead) return;
      const n = ++received;
      if (++pending >= max) call.pause();
      const accepted = accepting.then(() => (dead ? undefined : this.accept(buf, n)));
      accepting = accepted.catch(() => undefined);
      acking = acking
        .then(async () => {
          const r = await accepted;
          if (!r || dead) return;
          await r.durable;
          if (dead) return;
          call.write(encodeAck(r.ack));
          if (--pending < max && call.isPaused()) call.resume();
        })
        .catch((err: unknown) => {
          if (dead) return;
          dead = true;
          finish();
          if (err instanceof BatchError) refuse(grpc.status.INVALID_ARGUMENT, 'invalid_batch', err.message);
          else {
            log.error({ err }, 'batch not written');
            refuse(grpc.status.UNAVAILABLE, 'write_failed', 'the collector could not write the events durably; send them again');
          }
        });
    });
    call.on('end', () => {
      void acking.then(() => {
        if (dead) return;
        dead = true;
        finish();
        call.end();
      });
    });
  };

  private closing?: Promise<void>;
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.silenceTimer);
    for (const c of this.calls) c.emit('error', { code: grpc.status.UNAVAILABLE, details: 'collector shutting down' });
    const logs = await Promise.allSettled([...this.nodes.values()]);
    for (const l of logs)
      if (l.status === 'fulfilled') await l.value.close().catch((err: unknown) => this.log.error({ err }, 'closing a node log failed'));
  }
}

function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[3]) > 65535) throw new CollectorError(`--listen ${listen}: expected HOST:PORT`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}

/** Start the collector; resolves once it listens. */
export async function runCollector(o: CollectorOptions): Promise<RunningCollector> {
  const { host, port } = parseListen(o.listen);
  const tls = !!(o.tls?.cert || o.tls?.key || o.tls?.ca);
  if (!tls && !o.insecurePlaintext && !isLoopback(host)) {
    throw new CollectorError(
      `--listen ${o.listen}: clear text on an address other than loopback; give --tls-cert/--tls-key (and --tls-ca for client certificates) or pass --insecure-plaintext`,
    );
  }
  if (!tls && o.tokenFile && !isLoopback(host)) o.logger.warn('bearer tokens over clear text can be read on the network');
  const c = new Collector(o);
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 << 20, 'grpc.max_concurrent_streams': 1000 });
  const identity = (b: Buffer) => b;
  server.addService(
    {
      Ship: {
        path: SHIP_PATH,
        requestStream: true,
        responseStream: true,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    { Ship: c.ship },
  );
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${hostPart}:${port}`, serverCredentials(tls ? o.tls : undefined), (err, p) =>
      err ? reject(new CollectorError(`--listen ${o.listen}: ${err.message}`, { cause: err })) : resolve(p),
    ),
  );
  const address = `${hostPart}:${bound}`;
  o.logger.child({ component: 'collector' }).info({ address, out: o.outDir, tls, tokens: !!o.tokenFile }, 'collector listening');
  let closing: Promise<void> | undefined;
  return {
    address,
    port: bound,
    stats: () => c.stats(),
    close: () =>
      (closing ??= (async () => {
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, 3000);
          server.tryShutdown(() => {
            clearTimeout(t);
            resolve();
          });
          void c.close();
        });
        await c.close();
      })()),
  };
}
