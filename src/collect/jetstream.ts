// Collect from a JetStream stream instead of gRPC: a durable pull consumer reads the events
// that nats:// sinks published (one ctrwatch.v1.Event a message, Nats-Msg-Id
// `${node}:${boot}:${instance}:${seq}`) and writes them as the gRPC collector does:
// DIR/<node>/events-NNNNNN.jsonl + state.json through NodeLog (group commit, de-duplication
// windows per boot/instance). A message is acknowledged only after the lines it produced are
// durable, so a crash redelivers it and the window drops what was already written.
// Messages that are not valid events (bad protobuf, bad node name) are logged, counted and
// terminated (never redelivered). A sensor whose sensorStats stop for two of its intervals is
// raised as sensorSilent, as the gRPC collector does (silence.ts).

import * as path from 'node:path';
import { AckPolicy, connect, DeliverPolicy, type JsMsg, type NatsConnection } from 'nats';
import type { Logger } from 'pino';
import { JsonOut, type EventCodec, type JsonHead } from '../proto/codec';
import { NodeLog } from './node-log';
import { SilenceWatch, silentEvent } from './silence';

const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

export interface JetStreamCollectorOptions {
  servers: string[];
  stream: string;
  /** Durable consumer name (kept by the server: a restarted collector goes on from there). */
  durable: string;
  outDir: string;
  codec: EventCodec;
  logger: Logger;
  maxFileBytes?: number;
  batch?: number;
  token?: string;
  /** TLS to the servers (PEM contents): required, the server checked against ca (else the system's CAs). */
  tls?: { ca?: string; cert?: string; key?: string };
}

export interface JetStreamCollectorStats {
  received: number;
  written: number;
  duplicates: number;
  invalid: number;
  /** sensorSilent events raised: sensors whose stats stopped for two intervals. */
  silent: number;
}

export class JetStreamCollector {
  private readonly log: Logger;
  private readonly nodes = new Map<string, Promise<NodeLog>>();
  private readonly counters: JetStreamCollectorStats = { received: 0, written: 0, duplicates: 0, invalid: 0, silent: 0 };
  private readonly silence = new SilenceWatch();
  private readonly silenceTimer: NodeJS.Timeout;
  private stopped = false;
  private loop?: Promise<void>;

  private constructor(
    private readonly o: JetStreamCollectorOptions,
    private readonly nc: NatsConnection,
  ) {
    this.log = o.logger.child({ component: 'jetstream-collector', stream: o.stream });
    this.silenceTimer = setInterval(() => this.raiseSilent(Date.now()), 1000).unref();
  }

  /** A sensorSilent line in the node's log for each sensor whose stats stopped. */
  private raiseSilent(nowMs: number): void {
    for (const s of this.silence.check(nowMs)) {
      this.counters.silent++;
      this.log.warn({ node: s.node, bootId: s.bootId, instance: s.instanceId, silentForMs: s.silentForMs }, 'sensor silent');
      const line = `${JSON.stringify(silentEvent(s, nowMs))}\n`;
      this.nodeLog(s.node)
        .then((l) => l.append(line, 1))
        .catch((err: unknown) => this.log.error({ err, node: s.node }, 'sensorSilent not written'));
    }
  }

  static async start(o: JetStreamCollectorOptions): Promise<JetStreamCollector> {
    const nc = await connect({
      servers: o.servers,
      token: o.token,
      // TLS asked for: required, or the connect fails. Else a server that offers TLS is still
      // taken up on it (checked against the system's CAs); clear text is for loopback (flags.ts).
      ...(o.tls ? { tls: { ...o.tls } } : {}),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      name: 'ctrwatch collect',
    });
    const jsm = await nc.jetstreamManager();
    try {
      await jsm.consumers.info(o.stream, o.durable);
    } catch {
      await jsm.consumers.add(o.stream, {
        durable_name: o.durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: 30_000_000_000,
        max_ack_pending: 20_000,
      });
    }
    const c = new JetStreamCollector(o, nc);
    c.loop = c.run();
    return c;
  }

  stats(): JetStreamCollectorStats {
    return { ...this.counters };
  }

  private nodeLog(node: string): Promise<NodeLog> {
    let p = this.nodes.get(node);
    if (!p) {
      p = NodeLog.open({ dir: path.join(this.o.outDir, node), maxFileBytes: this.o.maxFileBytes ?? 256 << 20, logger: this.o.logger });
      this.nodes.set(node, p);
    }
    return p;
  }

  private async run(): Promise<void> {
    const js = this.nc.jetstream();
    const consumer = await js.consumers.get(this.o.stream, this.o.durable);
    while (!this.stopped) {
      try {
        const msgs: JsMsg[] = [];
        const it = await consumer.fetch({ max_messages: this.o.batch ?? 1000, expires: 1000 });
        for await (const m of it) msgs.push(m);
        if (msgs.length) await this.handle(msgs);
      } catch (err) {
        if (this.stopped) break;
        this.log.warn({ err }, 'fetch failed: trying again');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async handle(msgs: JsMsg[]): Promise<void> {
    const texts = new Map<string, { text: string[]; lines: number }>();
    const bad: JsMsg[] = [];
    const out = new JsonOut(4096);
    const head: JsonHead = { seq: undefined, timeUnixNano: undefined, node: '', bootId: '', kind: undefined };
    for (const m of msgs) {
      this.counters.received++;
      try {
        const h = this.o.codec.head(m.data);
        if (!NODE_RE.test(h.node)) throw new Error(`node ${JSON.stringify(h.node.slice(0, 80))} is not a valid node name`);
        const id = m.headers?.get('Nats-Msg-Id') ?? '';
        const parts = id.split(':');
        const instance = parts.length >= 4 ? parts[parts.length - 2]! : 'unknown';
        const log = await this.nodeLog(h.node);
        // Synchronous from the window check to the queued text (per node), as in collector.ts.
        const win = log.window(`${h.bootId}/${instance}`);
        if (!win.accept(BigInt(h.seq))) {
          this.counters.duplicates++;
          continue;
        }
        out.pos = 0;
        this.o.codec.writeJson(m.data, out, head);
        if (head.kind === 'sensorStats' && head.timeUnixNano !== undefined)
          this.silence.stats(h.node, h.bootId, instance, BigInt(head.timeUnixNano), Date.now());
        const line = out.buf.toString('utf8', 0, out.pos) + '\n';
        let t = texts.get(h.node);
        if (!t) texts.set(h.node, (t = { text: [], lines: 0 }));
        t.text.push(line);
        t.lines++;
      } catch (err) {
        this.counters.invalid++;
        bad.push(m);
        this.log.error({ err, subject: m.subject, streamSeq: m.seq }, 'not a valid event: terminated');
      }
    }
    await Promise.all([...texts].map(async ([node, t]) => (await this.nodeLog(node)).append(t.text.join(''), t.lines)));
    for (const t of texts.values()) this.counters.written += t.lines;
    for (const m of msgs) {
      if (bad.includes(m)) m.term();
      else m.ack();
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.silenceTimer);
    await this.loop?.catch(() => undefined);
    await this.nc.drain().catch(() => undefined);
    for (const p of this.nodes.values()) await (await p).close();
  }
}
