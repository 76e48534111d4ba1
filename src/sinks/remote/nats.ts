// nats://HOST:PORT[,HOST:PORT…]/SUBJECT[?stream=NAME&replicas=N] — each event's protobuf bytes
// (one ctrwatch.v1.Event) published to a JetStream stream with the nats client. Every message
// carries Nats-Msg-Id `${node}:${boot}:${instance}:${seq}`, so JetStream drops a resend within
// the stream's duplicate window. A spooled batch is published concurrently and counts as
// delivered only when every publish is acknowledged by the stream; a failed or missing ack
// sends the whole batch again after a backoff (the acked ones come back as duplicates, counted
// in failures.resent_duplicates). Publishes go out as plain messages with a reply subject,
// their PubAcks matched by token (see send()). With ?stream=NAME the stream is created if missing (subject
// SUBJECT, N replicas, file storage).

import { connect, createInbox, headers, type JetStreamClient, type NatsConnection, type Subscription } from 'nats';
import type { FsyncPolicy, SpoolBatch } from '../spool/spool';
import { SpooledSink, type SendResult, type SpooledSinkOptions } from '../spool/spooled-sink';

export interface NatsSpec {
  kind: 'nats';
  url: string;
  servers: string[];
  subject: string;
  stream?: string;
  replicas: number;
  batchEvents: number;
  fsync: FsyncPolicy;
}

export interface NatsSinkOptions extends Omit<SpooledSinkOptions, 'name'> {
  spec: NatsSpec;
  /** Per publish ack. */
  ackTimeoutMs?: number;
  token?: string;
}

export const msgId = (node: string, bootId: string, instanceId: string, seq: bigint | number) => `${node}:${bootId}:${instanceId}:${seq}`;

export class NatsSink extends SpooledSink {
  private nc?: NatsConnection;
  private js?: JetStreamClient;
  private connecting?: Promise<void>;
  private streamReady = false;
  private readonly inbox = createInbox();
  private sub?: Subscription;
  private token = 0;
  private readonly pending = new Map<string, (data: Uint8Array) => void>();

  private constructor(private readonly o: NatsSinkOptions) {
    super({ ...o, name: o.spec.url, batchEvents: o.batchEvents ?? o.spec.batchEvents, fsync: o.fsync ?? o.spec.fsync });
  }

  static async create(o: NatsSinkOptions): Promise<NatsSink> {
    const s = new NatsSink(o);
    await s.start();
    return s;
  }

  private ensure(): Promise<void> {
    this.connecting ??= (async () => {
      try {
        if (!this.nc) {
          this.nc = await connect({
            servers: this.o.spec.servers,
            name: `ctrwatch ${this.o.identity.node}`,
            token: this.o.token,
            maxReconnectAttempts: -1,
            reconnectTimeWait: 250,
            timeout: 5000,
          });
          this.js = this.nc.jetstream({ timeout: this.o.ackTimeoutMs ?? 5000 });
          this.log.info({ server: this.nc.getServer() }, 'connected to NATS');
          void this.nc.closed().then((err) => err && this.log.warn({ err }, 'NATS connection closed'));
        }
        if (this.o.spec.stream && !this.streamReady) {
          const jsm = await this.nc.jetstreamManager({ timeout: this.o.ackTimeoutMs ?? 5000 });
          try {
            await jsm.streams.info(this.o.spec.stream);
          } catch {
            await jsm.streams.add({ name: this.o.spec.stream, subjects: [this.o.spec.subject], num_replicas: this.o.spec.replicas });
            this.log.info({ stream: this.o.spec.stream, replicas: this.o.spec.replicas }, 'JetStream stream created');
          }
          this.streamReady = true;
        }
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  /**
   * Publish the batch: plain publishes with Nats-Msg-Id and a reply subject under this sink's
   * inbox, the stream's PubAcks matched by the reply token. (js.publish() makes a request, a
   * timer and a promise a message: about 8k messages/s on one core; this does 2-3x that.)
   */
  // eslint-disable-next-line max-lines-per-function -- one publish window: the publishes, their acks and their errors share the batch's state
  protected async send(batch: SpoolBatch): Promise<SendResult> {
    try {
      await this.ensure();
    } catch (err) {
      return { kind: 'retry', reason: 'nats_connect', detail: (err as Error).message };
    }
    const nc = this.nc!;
    if (!this.sub) {
      this.sub = nc.subscribe(`${this.inbox}.*`, {
        callback: (_err, m) => {
          const tok = m.subject.slice(this.inbox.length + 1);
          const p = this.pending.get(tok);
          if (!p) return;
          this.pending.delete(tok);
          p(m.data);
        },
      });
    }
    const { node, bootId, instanceId } = batch.id;
    const n = batch.records.length;
    let acked = 0;
    let dups = 0;
    let firstError: string | undefined;
    let errors = 0;
    const tokens: string[] = [];
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.o.ackTimeoutMs ?? 5000);
      const onReply = (data: Uint8Array) => {
        try {
          const a = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')) as {
            seq?: number;
            duplicate?: boolean;
            error?: { description?: string };
          };
          if (a.error || a.seq === undefined) {
            errors++;
            firstError ??= a.error?.description ?? 'no stream seq in the ack';
          } else {
            acked++;
            if (a.duplicate) dups++;
          }
        } catch {
          errors++;
          firstError ??= data.length ? 'unreadable ack' : 'no responders (is the stream there?)';
        }
        if (acked + errors === n) {
          clearTimeout(timer);
          resolve();
        }
      };
      for (const r of batch.records) {
        const tok = String(++this.token);
        tokens.push(tok);
        this.pending.set(tok, onReply);
        const h = headers();
        h.set('Nats-Msg-Id', msgId(node, bootId, instanceId, r.seq));
        nc.publish(this.o.spec.subject, r.bytes, { reply: `${this.inbox}.${tok}`, headers: h });
      }
    });
    await done;
    for (const t of tokens) this.pending.delete(t);
    if (dups) this.counters.failures.resent_duplicates = (this.counters.failures.resent_duplicates ?? 0) + dups;
    if (acked < n)
      return {
        kind: 'retry',
        reason: errors ? 'nats_publish_error' : 'nats_ack_timeout',
        detail: `${n - acked}/${n} publishes not acknowledged${firstError ? `: ${firstError}` : ''}`,
      };
    return { kind: 'ok' };
  }

  protected async release(): Promise<void> {
    this.sub?.unsubscribe();
    this.sub = undefined;
    const nc = this.nc;
    this.nc = undefined;
    if (nc) await nc.close().catch(() => undefined);
  }
}
