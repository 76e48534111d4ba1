// Prometheus metrics (--metrics ADDR): the sensor's counters, read from the caller at each
// scrape, the sinks' queues, spools, drops, failures and latency, and the process's CPU and
// memory (prom-client's default metrics). One Registry an instance: no global state.

import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SinkHub } from '../sinks/hub';
import type { Num, SensorCounters } from './stats-event';
import { CLASS_NAMES, SinkError } from '../sinks/types';

export interface SensorMetricsOptions {
  /** Read at each scrape: the sensor's cumulative counters. */
  read?: () => SensorCounters;
  hub?: SinkHub;
}

export interface MetricsServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A counter whose value is a cumulative number read from elsewhere at scrape time. */
function mirror(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  values: () => [Record<string, string>, Num][],
): Counter<string> {
  return new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, v] of values()) this.inc(labels, Number(v));
    },
  });
}

function gauge(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  values: () => [Record<string, string>, Num][],
): Gauge<string> {
  return new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, v] of values()) this.set(labels, Number(v));
    },
  });
}

export class SensorMetrics {
  readonly registry = new Registry();
  private read: () => SensorCounters;
  private readonly latency: Histogram<string>;

  // eslint-disable-next-line max-lines-per-function -- declares every metric: a list, not logic
  constructor(private readonly o: SensorMetricsOptions = {}) {
    this.read = o.read ?? (() => ({}));
    const r = this.registry;
    collectDefaultMetrics({ register: r });
    const one = (k: keyof SensorCounters) => (): [Record<string, string>, Num][] => {
      const v = this.read()[k];
      return typeof v === 'number' || typeof v === 'bigint' ? [[{}, v]] : [];
    };
    mirror(r, 'ctrwatch_records_total', 'Kernel records decoded, by type.', ['type'], () =>
      Object.entries(this.read().recordsByType ?? {}).map(([type, v]) => [{ type }, v]),
    );
    mirror(r, 'ctrwatch_records_decoded_total', 'Kernel records decoded.', [], one('recordsDecoded'));
    mirror(r, 'ctrwatch_decode_errors_total', 'Kernel records that could not be decoded.', [], one('decodeErrors'));
    mirror(r, 'ctrwatch_kernel_drops_total', 'Records the kernel could not put in the ring buffer.', [], one('ringBufferDrops'));
    mirror(r, 'ctrwatch_kernel_read_errors_total', 'Kernel helper failures (probe reads etc.).', [], one('kernelReadErrors'));
    mirror(r, 'ctrwatch_kernel_counter_total', 'Raw kernel counters, by name.', ['name'], () =>
      Object.entries(this.read().kernel ?? {}).map(([name, v]) => [{ name }, v]),
    );
    mirror(
      r,
      'ctrwatch_containment_total',
      'Containment outcomes of detections, by rule, outcome and path.',
      ['rule', 'outcome', 'path'],
      () =>
        Object.entries(this.read().containment ?? {}).map(([k, v]) => {
          const [path, outcome, ...rule] = k.split('.').reverse();
          return [{ rule: rule.reverse().join('.'), outcome, path }, v];
        }),
    );
    mirror(r, 'ctrwatch_enrich_failures_total', 'Containers whose runtime files could not be read.', [], one('enrichFailures'));
    mirror(r, 'ctrwatch_image_store_errors_total', 'Failed reads and writes of the image first-seen store, by op.', ['op'], () => {
      const e = this.read().imageStoreErrors;
      return e
        ? [
            [{ op: 'read' }, e.read],
            [{ op: 'write' }, e.write],
          ]
        : [];
    });
    mirror(r, 'ctrwatch_events_total', 'Events emitted.', [], one('eventsEmitted'));
    mirror(r, 'ctrwatch_detections_total', 'Detections emitted.', [], one('detections'));
    gauge(r, 'ctrwatch_containers_tracked', 'Containers tracked.', [], one('containersTracked'));
    gauge(r, 'ctrwatch_processes_tracked', 'Processes tracked.', [], one('processesTracked'));

    const sinks = () => o.hub?.stats().sinks ?? [];
    gauge(r, 'ctrwatch_sink_queue_events', 'Events in a sink’s memory queue.', ['sink'], () =>
      sinks().map((s) => [{ sink: s.name }, s.queued]),
    );
    gauge(r, 'ctrwatch_sink_spool_events', 'Events in a sink’s disk spool, not yet acknowledged.', ['sink'], () =>
      sinks().map((s) => [{ sink: s.name }, s.spooledEvents]),
    );
    gauge(r, 'ctrwatch_sink_spool_bytes', 'Bytes of a sink’s disk spool.', ['sink'], () =>
      sinks().map((s) => [{ sink: s.name }, s.spooledBytes]),
    );
    gauge(r, 'ctrwatch_sink_connected', '1 when a network sink has a working stream.', ['sink'], () =>
      sinks()
        .filter((s) => s.connected !== undefined)
        .map((s) => [{ sink: s.name }, s.connected ? 1 : 0]),
    );
    mirror(r, 'ctrwatch_sink_delivered_total', 'Events a sink delivered (written, or acknowledged by the collector).', ['sink'], () =>
      sinks().map((s) => [{ sink: s.name }, s.delivered]),
    );
    mirror(r, 'ctrwatch_sink_dropped_total', 'Events a sink lost, by reason and class.', ['sink', 'reason', 'class'], () =>
      sinks().flatMap((s) =>
        Object.entries(s.dropped).flatMap(([reason, byClass]) =>
          CLASS_NAMES.filter((c) => byClass?.[c]).map((c): [Record<string, string>, Num] => [
            { sink: s.name, reason, class: c },
            byClass![c]!,
          ]),
        ),
      ),
    );
    mirror(r, 'ctrwatch_sink_failures_total', 'Sink failures that lost nothing (retried), by reason.', ['sink', 'reason'], () =>
      sinks().flatMap((s) => Object.entries(s.failures).map(([reason, n]): [Record<string, string>, Num] => [{ sink: s.name, reason }, n])),
    );
    mirror(r, 'ctrwatch_encode_errors_total', 'Events that did not fit the schema (sent nowhere).', [], () =>
      o.hub ? [[{}, o.hub.stats().encodeErrors]] : [],
    );
    this.latency = new Histogram({
      name: 'ctrwatch_sink_latency_seconds',
      help: 'From offer to delivered, a batch at a time (its oldest event).',
      labelNames: ['sink'],
      registers: [r],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    });
    for (const s of o.hub?.sinks ?? []) s.onDelivered = (secs) => this.latency.observe({ sink: s.name }, secs);
  }

  /** Where the sensor's counters come from (if not given to the constructor). */
  setSource(read: () => SensorCounters): void {
    this.read = read;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Serve GET /metrics on HOST:PORT (port 0: any free port). */
  async listen(addr: string, logger: Logger): Promise<MetricsServer> {
    const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr);
    if (!m) throw new SinkError(`--metrics ${addr}: expected HOST:PORT`);
    const host = m[1] ?? (m[2] || '0.0.0.0');
    const log = logger.child({ component: 'metrics' });
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404).end('see /metrics\n');
        return;
      }
      this.text().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (err: unknown) => {
          log.error({ err }, 'metrics failed');
          res.writeHead(500).end();
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new SinkError(`--metrics ${addr}: ${err.message}`, { cause: err })));
      server.listen(Number(m[3]), host, resolve);
    });
    const port = (server.address() as AddressInfo).port;
    log.info({ address: `${host}:${port}` }, 'metrics at /metrics');
    return { address: `${host}:${port}`, port, close: () => new Promise<void>((r) => server.close(() => r())) };
  }
}
