// sensorSilent: a sensor whose sensorStats stop. Every sensor sends them at its own interval
// (--stats-interval-s); the collector learns that interval from the gap between two of them
// and raises sensorSilent once no stats came for two intervals. A sensor killed, stopped,
// cut off or wedged looks exactly like that, so the silence is the signal.
//
// One sensor a node: a newer one (a restart, a reboot: another boot or instance id) takes the
// node over, and stats stamped before the newest seen (an old instance's spool, resent by its
// successor) are a replay, not a sign of life.

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
  bootId: string;
  instanceId: string;
  lastAtMs: number;
  /** The sensor's own stamp (ns) of its newest stats. */
  lastStampNs: bigint;
  intervalMs: number;
  learnt: boolean;
  raised: boolean;
}

export class SilenceWatch {
  private readonly nodes = new Map<string, Watched>();

  /** A sensorStats event arrived from (node, boot, instance), stamped stampNs by the sensor. */
  stats(node: string, bootId: string, instanceId: string, stampNs: bigint, nowMs: number): void {
    const w = this.nodes.get(node);
    if (w && stampNs <= w.lastStampNs) return; // a replay
    if (!w || w.bootId !== bootId || w.instanceId !== instanceId) {
      this.nodes.set(node, {
        bootId,
        instanceId,
        lastAtMs: nowMs,
        lastStampNs: stampNs,
        intervalMs: DEFAULT_INTERVAL_MS,
        learnt: false,
        raised: false,
      });
      return;
    }
    // The smallest gap: a sensor's interval is fixed for its life, and a gap after a silence is not it.
    const gap = Math.max(1, Number((stampNs - w.lastStampNs) / 1_000_000n));
    w.intervalMs = w.learnt ? Math.min(w.intervalMs, gap) : gap;
    w.learnt = true;
    w.lastStampNs = stampNs;
    w.lastAtMs = nowMs;
    w.raised = false;
  }

  /** Sensors silent for more than two intervals, each raised once per silence. */
  check(nowMs: number): SilentSensor[] {
    const out: SilentSensor[] = [];
    for (const [node, w] of this.nodes) {
      const silentForMs = nowMs - w.lastAtMs;
      if (w.raised || silentForMs <= 2 * w.intervalMs) continue;
      w.raised = true;
      out.push({ node, bootId: w.bootId, instanceId: w.instanceId, lastStatsAtMs: w.lastAtMs, intervalMs: w.intervalMs, silentForMs });
    }
    return out;
  }
}

/** The sensorSilent event a collector writes into the node's log (and hands to its console). */
export function silentEvent(s: SilentSensor, nowMs: number): Record<string, unknown> {
  return {
    timeUnixNano: String(BigInt(nowMs) * 1_000_000n),
    node: s.node,
    bootId: s.bootId,
    sensorSilent: {
      instanceId: s.instanceId,
      lastStatsUnixNano: String(BigInt(s.lastStatsAtMs) * 1_000_000n),
      intervalMs: String(s.intervalMs),
      silentForMs: String(s.silentForMs),
    },
  };
}
