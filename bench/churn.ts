/**
 * Churn: N short-lived containers (`runc run` of /bin/true through RuntimeLab,
 * P at a time, as fast as the machine starts them) while `ctrwatch run` runs.
 * Per container id, the containerCreated / containerStarted / containerExited
 * lines received are counted: each must come exactly once. The sensor's own
 * counters (kernel sent/dropped per record type, from its "sensor stopped" log
 * line) say whether the kernel dropped anything meanwhile.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CtrwatchRun, loadLab, type Lab, type SensorStopped } from './lab';
import { OUT, sleep } from './lib';

export interface ChurnConfig {
  containers: number;
  parallel: number;
  log: (msg: string) => void;
}

const KINDS = ['containerCreated', 'containerStarted', 'containerExited'] as const;
type Kind = (typeof KINDS)[number];

export interface ChurnResult {
  config: { containers: number; parallel: number };
  command: string;
  /** Containers whose `runc run` exited 0. */
  ran: number;
  failed: number;
  failures: string[];
  /** Containers per second of wall time, start of the first to end of the last. */
  rate: number;
  expected: Record<Kind, number>;
  received: Record<Kind, number>;
  /** Containers with no line of that kind. */
  missing: Record<Kind, number>;
  /** Lines beyond the first of their kind for one container. */
  duplicates: Record<Kind, number>;
  /** Lines about our containers from a container we did not run (should be none). */
  unknownIds: number;
  /** Sum of missing over kinds: the figure. */
  lost: number;
  sensor: SensorStopped;
  droppedKernel: number;
  wallS: number;
  /** RuntimeLab's temp dir (for the leftover check: every process it started names it). */
  labDir?: string;
  error?: string;
}

export async function runChurn(cfg: ChurnConfig): Promise<ChurnResult> {
  const t0 = Date.now();
  const zero = (): Record<Kind, number> => ({ containerCreated: 0, containerStarted: 0, containerExited: 0 });
  const stateDir = mkdtempSync('/tmp/ctrwatch-bench-state-');
  const args = ['--state-dir', stateDir];
  const res: ChurnResult = {
    config: { containers: cfg.containers, parallel: cfg.parallel },
    command: `ctrwatch run ${args.join(' ')} (stdout piped to node dist/bench/ctrwatch-reader.js); ${cfg.containers}× runc run of /bin/true via RuntimeLab, ${cfg.parallel} at a time`,
    ran: 0,
    failed: 0,
    failures: [],
    rate: NaN,
    expected: zero(),
    received: zero(),
    missing: zero(),
    duplicates: zero(),
    unknownIds: 0,
    lost: NaN,
    sensor: {},
    droppedKernel: NaN,
    wallS: 0,
  };
  const RuntimeLab = loadLab();
  const av = RuntimeLab.available('runc');
  if (!av.ok) {
    res.error = av.reason;
    return res;
  }
  mkdirSync(join(OUT, 'logs'), { recursive: true });
  const cw = new CtrwatchRun(args, join(OUT, 'logs', 'churn-ctrwatch.log'));
  let lab: Lab | undefined;
  const tag = `cwc${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const ok = new Set<string>();
  try {
    lab = await RuntimeLab.open();
    res.labDir = lab.dir;
    await cw.start();
    const from = cw.lines.length;
    let next = 0;
    const tStart = Date.now();
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= cfg.containers) return;
        const name = `${tag}-${i}`;
        try {
          const c = await lab!.start('runc', { name, args: ['/bin/true'], detach: false, timeoutMs: 60_000 });
          if (c.exitCode === 0) ok.add(name);
          else {
            res.failed++;
            if (res.failures.length < 5) res.failures.push(`${name}: exit ${c.exitCode}`);
          }
        } catch (e) {
          res.failed++;
          if (res.failures.length < 5) res.failures.push(`${name}: ${(e as Error).message.split('\n')[0]}`);
        }
        if ((i + 1) % 100 === 0) cfg.log(`churn: ${i + 1}/${cfg.containers} started`);
      }
    };
    await Promise.all(Array.from({ length: cfg.parallel }, worker));
    res.rate = cfg.containers / ((Date.now() - tStart) / 1000);
    res.ran = ok.size;
    // Let the last lines come: until every container has its three, or 3 s without a new line (at most 30 s).
    const complete = () => {
      const seen = new Map<string, number>();
      for (const l of cw.lines.slice(from)) {
        for (const k of KINDS) {
          const id = l.e[k]?.container?.id as string | undefined;
          if (id && ok.has(id)) seen.set(id, (seen.get(id) ?? 0) + 1);
        }
      }
      return [...ok].every((id) => (seen.get(id) ?? 0) >= 3);
    };
    const until = Date.now() + 30_000;
    let n = cw.lines.length;
    let quietSince = Date.now();
    while (!complete() && Date.now() < until && Date.now() - quietSince < 3000) {
      await sleep(100);
      if (cw.lines.length !== n) {
        n = cw.lines.length;
        quietSince = Date.now();
      }
    }
    for (const k of KINDS) res.expected[k] = ok.size;
    const per = new Map<string, Record<Kind, number>>();
    for (const l of cw.lines.slice(from)) {
      for (const k of KINDS) {
        const id = l.e[k]?.container?.id as string | undefined;
        if (!id || !id.startsWith(`${tag}-`)) continue;
        if (!ok.has(id)) {
          res.unknownIds++;
          continue;
        }
        const r = per.get(id) ?? zero();
        r[k]++;
        per.set(id, r);
        res.received[k]++;
      }
    }
    for (const id of ok) {
      const r = per.get(id) ?? zero();
      for (const k of KINDS) {
        if (r[k] === 0) res.missing[k]++;
        if (r[k] > 1) res.duplicates[k] += r[k] - 1;
      }
    }
    res.lost = KINDS.reduce((s, k) => s + res.missing[k], 0);
  } catch (e) {
    res.error = (e as Error).message;
    cfg.log(`churn failed: ${res.error}`);
  } finally {
    res.sensor = await cw.stop().catch(() => ({}));
    if (lab) await lab.close().catch((e: Error) => cfg.log(`churn: RuntimeLab.close: ${e.message}`));
    rmSync(stateDir, { recursive: true, force: true });
  }
  res.droppedKernel = res.sensor.counters?.dropped ?? NaN;
  res.wallS = (Date.now() - t0) / 1000;
  cfg.log(
    `churn: ${res.ran} containers at ${res.rate.toFixed(1)}/s; lost ${res.lost}, duplicates ${KINDS.map((k) => res.duplicates[k]).join('/')}, kernel dropped ${res.droppedKernel}`,
  );
  return res;
}
