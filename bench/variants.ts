/**
 * What runs alongside the storm. Each variant is a command started before the
 * storm and stopped (SIGTERM) after it; `baseline` and `control` start nothing.
 *
 * The headline variant (the one with the target) is `ctrwatch-run` on the host
 * storm: `ctrwatch run` as shipped, every hook attached, every record decoded,
 * correlated, run through the rules and encoded, JSON lines to /dev/null. The
 * `sensor*` variants (KernelSensor and the decoder only, bench/sensor-proc.ts)
 * and bpftrace stay beside it for comparison.
 *
 * To measure another sensor command, either edit the list below or set
 *   BENCH_SENSOR_CMD='./bin/ctrwatch run --drain-ms 50 > /dev/null'
 * which replaces the command of the `sensor` variant (run with /bin/sh -c
 * 'exec …' from the package root; stdout then is whatever the command says).
 */
import { join } from 'node:path';
import { CODE, OUT } from './lib';

/**
 * The storm's shape (bench/storm.c): on the host; a busy container (unshared, then exec'd again as
 * a container's entry is after its runtime's root change, so every process runs what was exec'd
 * in that namespace); a sandbox (unshared and never exec'd since: its forks are all sent).
 */
export type Scenario = 'host' | 'container' | 'sandbox';

export interface Variant {
  /** Unique within its scenario. */
  name: string;
  scenario: Scenario;
  description: string;
  /** argv; empty for a run with nothing alongside the storm. */
  cmd: string[];
  /**
   * 'counters': stdout is sensor-proc's JSON lines (ready, counters on SIGUSR2);
   * 'none': stdout goes to the run's log file and only CPU time is measured.
   */
  protocol: 'counters' | 'none';
  /** With protocol 'none': its Prometheus page, read before and after each storm for the records it decoded. */
  metricsUrl?: string;
  /** Where stdout goes when protocol is 'none': the run's log file (default) or /dev/null. */
  stdout?: 'log' | 'null';
  /** Left out unless named in BENCH_VARIANTS. */
  optIn?: boolean;
  /** Attached BPF programs (links + perf attachments) to wait for before the storm. */
  minAttached: number;
  /** The one figure with a target: ctrwatch run's overhead on the host storm. */
  target?: { minRatio: number; text: string };
}

const node = process.execPath;
const sensorProc = join(CODE, 'dist', 'bench', 'sensor-proc.js');

/** bpftrace on the same three tracepoints, printing similar fields, output to /dev/null. */
export const BPFTRACE_PROGRAM = [
  'tracepoint:sched:sched_process_fork { printf("fork %d %d %s\\n", args->parent_pid, args->child_pid, comm); }',
  'tracepoint:sched:sched_process_exec { printf("exec %d %d %s %s\\n", pid, args->old_pid, comm, str(args->filename)); }',
  'tracepoint:sched:sched_process_exit { printf("exit %d %s\\n", pid, comm); }',
].join(' ');

function sensorVariant(scenario: Scenario, name: string, description: string, extra: string[], optIn = false): Variant {
  return { name, scenario, description, cmd: [node, sensorProc, ...extra], protocol: 'counters', minAttached: 3, optIn };
}

const TARGET = { minRatio: 0.97, text: 'overhead < 3% (ratio ≥ 0.97)' };

/**
 * The hooks issue 11 (detections that hold against evasion) added: file opens, the new mount
 * API, root changes, other processes' memory, connects, the sensor's guards (signals, ptrace,
 * bpf(), io_uring) and io_uring submissions. `host:sensor-noevasion` leaves them out (neither
 * loaded nor attached), so its ratio against `host:sensor` prices them on the host exec storm.
 * Work they added inside the fork/exec/exit programs stays in both.
 */
export const EVASION_PREFIXES = ['cw_file_', 'cw_mnt_', 'cw_root_', 'cw_mem_', 'cw_net_', 'cw_guard_', 'cw_uring_', 'cw_signal'];
const EVASION_SKIP = EVASION_PREFIXES.join(',');

function control(scenario: Scenario): Variant {
  return {
    name: 'control',
    scenario,
    description: 'storm alone again (A/A: the noise floor of a ratio)',
    cmd: [],
    protocol: 'none',
    minAttached: 0,
  };
}

function bpftrace(scenario: Scenario): Variant {
  return {
    name: 'bpftrace',
    scenario,
    description: 'bpftrace printf on sched_process_fork/exec/exit to /dev/null',
    cmd: ['bpftrace', '-o', '/dev/null', '-e', BPFTRACE_PROGRAM],
    protocol: 'none',
    minAttached: 3,
  };
}

/** Where the overhead runs of `ctrwatch run` keep node state (images seen): not the node's /var/lib/ctrwatch. */
export const CTRWATCH_STATE = join(OUT, 'ctrwatch-state');

/** Where the overhead runs' `ctrwatch run` serves its metrics (loopback; one run at a time). */
const CTRWATCH_METRICS = '127.0.0.1:19464';

/** Issue 15's goal for the busy-container storm (and clearly above bpftrace's ratio in the same run). */
const CONTAINER_TARGET = { minRatio: 0.97, text: 'ratio ≥ 0.97 and above container:bpftrace' };

function ctrwatchRun(scenario: Scenario, target?: Variant['target']): Variant {
  return {
    name: 'ctrwatch-run',
    scenario,
    target,
    description: 'ctrwatch run: every hook attached, records decoded, correlated, detected and encoded; JSON lines to /dev/null',
    cmd: [node, join(CODE, 'bin', 'ctrwatch'), 'run', '--state-dir', CTRWATCH_STATE, '--metrics', CTRWATCH_METRICS],
    protocol: 'none',
    metricsUrl: `http://${CTRWATCH_METRICS}/metrics`,
    stdout: 'null',
    minAttached: 12,
  };
}

/**
 * ctrwatch run at another nice level than its default (-5): 'off' (the inherited level: what the
 * raised priority costs the storm) or a level (what a higher one would give).
 */
function ctrwatchRunNice(scenario: Scenario, level: 'off' | number): Variant {
  const v = ctrwatchRun(scenario);
  const name = level === 'off' ? 'off' : String(-level);
  return {
    ...v,
    name: `ctrwatch-run-nice-${name}`,
    description:
      level === 'off'
        ? 'the same as ctrwatch-run with --nice=off (the inherited nice level, not -5)'
        : `the same as ctrwatch-run with --nice=${level}`,
    cmd: [...v.cmd, `--nice=${level}`],
    optIn: true,
  };
}

/**
 * ctrwatch run with node's --allocation-site-pretenuring: V8's default, which `ctrwatch run`
 * turns off (src/heap-tuning.ts; an explicit flag on node's command line stands). Its sensor CPU
 * per record beside ctrwatch-run's is the collector setting's effect on the running sensor.
 */
function ctrwatchRunPretenuring(scenario: Scenario): Variant {
  const v = ctrwatchRun(scenario);
  return {
    ...v,
    name: 'ctrwatch-run-pretenuring',
    description: "the same as ctrwatch-run with V8's allocation-site pretenuring on (node --allocation-site-pretenuring)",
    cmd: [v.cmd[0], '--allocation-site-pretenuring', ...v.cmd.slice(1)],
    optIn: true,
  };
}

export function defaultVariants(): Variant[] {
  const v: Variant[] = [
    { name: 'baseline', scenario: 'host', description: 'storm alone', cmd: [], protocol: 'none', minAttached: 0 },
    control('host'),
    ctrwatchRun('host', TARGET),
    sensorVariant('host', 'sensor', 'KernelSensor + decode in JS only (no pipeline), default options (drainMs 10)', []),
    sensorVariant(
      'host',
      'sensor-noevasion',
      'the same as host:sensor without the programs issue 11 added (file, mount, root, memory, connect, guard, io_uring hooks)',
      ['--skip-programs', EVASION_SKIP],
    ),
    sensorVariant('host', 'sensor-raw', 'KernelSensor without decode (batches counted, not decoded)', ['--raw']),
    // Opt-in (BENCH_VARIANTS=...,sensor-drain50): explored once, left out of the default run for time.
    sensorVariant('host', 'sensor-drain50', 'KernelSensor + decode, drainMs 50', ['--drain-ms', '50'], true),
    bpftrace('host'),
    // The busy-container storm: the storm in its own mount namespace, exec'd there as a
    // container's entry is, so every process is "in a container" and followed: its execs and exits
    // are sent (without a wake-up: they wait for the drain timer), its forks held back.
    {
      name: 'baseline',
      scenario: 'container',
      description: 'storm alone (own mount namespace)',
      cmd: [],
      protocol: 'none',
      minAttached: 0,
    },
    control('container'),
    ctrwatchRun('container', CONTAINER_TARGET),
    ctrwatchRunNice('container', 'off'),
    ctrwatchRunNice('container', -10),
    ctrwatchRunNice('container', -19),
    ctrwatchRunPretenuring('container'),
    bpftrace('container'),
    sensorVariant('container', 'sensor', 'KernelSensor + decode, default options (drainMs 10)', []),
    // The floor of any sensor that hands each record to JavaScript: the kernel programs and the
    // drain, nothing decoded.
    sensorVariant('container', 'sensor-raw', 'KernelSensor without decode (batches counted, not decoded)', ['--raw']),
    // Opt-in, for the kernel side on a cgroup v1 node like this one: the programs read the cgroup2
    // hierarchy, as on a node whose runtimes use it (bench/sensor-proc.ts --cgroup2).
    sensorVariant(
      'container',
      'sensor-cgroup2',
      "KernelSensor + decode, the kernel reading each task's cgroup2 cgroup (--cgroup2)",
      ['--cgroup2'],
      true,
    ),
    // The storm as a sandbox: unshared and never exec'd since, so its forks are sent too (as the
    // container scenario's were before forks were held back).
    {
      name: 'baseline',
      scenario: 'sandbox',
      description: 'storm alone (own mount namespace, no exec after the unshare)',
      cmd: [],
      protocol: 'none',
      minAttached: 0,
    },
    ctrwatchRun('sandbox'),
    sensorVariant('sandbox', 'sensor', 'KernelSensor + decode, default options (drainMs 10)', []),
    sensorVariant(
      'container',
      'sensor-gap0',
      'KernelSensor + decode, wakeGapNs 0 (a wake-up per urgent record)',
      ['--wake-gap-ns', '0'],
      true,
    ),
  ];
  const cmd = process.env.BENCH_SENSOR_CMD;
  if (cmd) {
    for (const x of v) {
      if (x.name === 'sensor') {
        x.cmd = ['/bin/sh', '-c', `exec ${cmd}`];
        x.protocol = 'none';
        x.description = `${cmd}`;
      }
    }
  }
  return v;
}

/**
 * The variants to run: BENCH_VARIANTS, a comma-separated list of names or
 * scenario:name (e.g. "sensor,container:sensor"), or all by default (a few
 * for a quick run).
 * BENCH_SCENARIOS (host,container,sandbox) selects whole scenarios. Every selected
 * scenario keeps its baseline, against which its ratios are computed.
 */
export function selectedVariants(dfltNames?: string): Variant[] {
  const all = defaultVariants();
  const scen = (process.env.BENCH_SCENARIOS ?? 'host,container,sandbox')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const names = (process.env.BENCH_VARIANTS ?? dfltNames)
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return all.filter((v) => {
    if (!scen.includes(v.scenario)) return false;
    if (v.name === 'baseline') return true;
    if (!names) return !v.optIn;
    return names.includes(v.name) || names.includes(`${v.scenario}:${v.name}`);
  });
}
