// sensorSilent: a sensor whose sensorStats stop. Every sensor sends them at its own interval
// (--stats-interval-s); the collector learns that interval from the gap between two of them
// and raises sensorSilent once no stats came for two intervals. A sensor killed, stopped,
// cut off or wedged looks exactly like that, so the silence is the signal.

/** Until two stats have come, the sensor's default interval. */
const DEFAULT_INTERVAL_MS = 60_000;

export interface SilentSensor {
  node: string;
  bootId: string;
  instanceId: string;
  /** Wall time (ms) the last stats arrived at the collector. */
  lastStatsAtMs: number;
  intervalMs: number;
  silentForMs: number;
}

interface Watched {
  node: string;
  bootId: string;
  instanceId: string;
  lastAtMs: number;
  /** The sensor's own stamp (ns) of its last stats. */
  lastStampNs?: bigint;
  intervalMs: number;
  learnt?: boolean;
  raised: boolean;
}

export class SilenceWatch {
  private readonly sensors = new Map<string, Watched>();

  /** A sensorStats event arrived from (node, boot, instance), stamped stampNs by the sensor. */
  stats(node: string, bootId: string, instanceId: string, stampNs: bigint | undefined, nowMs: number): void {
    const key = `${node}/${bootId}/${instanceId}`;
    this.batch(node, bootId, instanceId);
    const w = this.sensors.get(key) ?? { node, bootId, instanceId, lastAtMs: nowMs, intervalMs: DEFAULT_INTERVAL_MS, raised: false };
    if (stampNs !== undefined && w.lastStampNs !== undefined && stampNs > w.lastStampNs) {
      // The smallest gap: a sensor's interval is fixed for its life, and a gap after a silence is not it.
      const gap = Math.max(1, Number((stampNs - w.lastStampNs) / 1_000_000n));
      w.intervalMs = w.learnt ? Math.min(w.intervalMs, gap) : gap;
      w.learnt = true;
    }
    if (stampNs !== undefined) w.lastStampNs = stampNs;
    w.lastAtMs = nowMs;
    w.raised = false;
    this.sensors.set(key, w);
  }

  /** Any batch from (node, boot, instance): a newer sensor on the node (a restart, a reboot)
   * supersedes the one before, whose stats then stop without it being a silence. */
  batch(node: string, bootId: string, instanceId: string): void {
    const key = `${node}/${bootId}/${instanceId}`;
    for (const [k, o] of this.sensors) if (o.node === node && k !== key) this.sensors.delete(k);
  }

  /** Sensors silent for more than two intervals, each raised once per silence. */
  check(nowMs: number): SilentSensor[] {
    const out: SilentSensor[] = [];
    for (const w of this.sensors.values()) {
      const silentForMs = nowMs - w.lastAtMs;
      if (w.raised || silentForMs <= 2 * w.intervalMs) continue;
      w.raised = true;
      out.push({
        node: w.node,
        bootId: w.bootId,
        instanceId: w.instanceId,
        lastStatsAtMs: w.lastAtMs,
        intervalMs: w.intervalMs,
        silentForMs,
      });
    }
    return out;
  }
}
