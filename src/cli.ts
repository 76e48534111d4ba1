import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Logger } from 'pino';
import { formatCheck, checkBtf, checkPrivileges, explainStartError, runChecks } from './doctor';
import { createLogger, logLevelFrom } from './log';
import { loadBinding } from './native';
import { formatVersion, versionInfo } from './version';
import { runSensor } from './run';
import { HEAP_GROWTH_DEFAULT, HEAP_GROWTH_MAX, HEAP_GROWTH_MIN, limitHeapGrowth } from './heap-growth';
import { tuneGc, tuneHeapForSize } from './heap-tuning';
import { capYoungGeneration, YOUNG_MB_DEFAULT, YOUNG_MB_MAX, YOUNG_MB_MIN } from './young-gen';
import { applyNice, parseNice } from './sched-priority';
import { formatJson, formatTable, listContainers } from './ps';
import { formatPodJson, formatPodTable } from './ps-pods';
import { DEFAULT_POLICY, loadPolicy, PolicyError, type Policy } from './detect/policy';
import { RULES } from './detect/catalog';
import { KILLABLE } from './detect/actions';
import { CredentialsError, OutputSpecError, parseOutputs, SINK_FLAGS, SINK_USAGE, sinkFlags, type SinkFlags } from './sinks';
import { CollectFlagError, COLLECT_USAGE } from './collect/flags';

/**
 * The collector, loaded for this command only: its gRPC, NATS and console modules are resident
 * memory that `ctrwatch run` would otherwise carry.
 */
async function collect(args: string[], log: Logger): Promise<number> {
  try {
    const { collectMain } = await import('./collect/main');
    return await collectMain(args, log);
  } catch (err) {
    if (err instanceof CollectFlagError) throw new UsageError(err.message);
    throw err;
  }
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const USAGE = `usage: ctrwatch <command> [options]

commands:
  run       run the sensor: events as JSON lines on stdout, logs on stderr
  ps        list the containers running now, whatever runtime made them (--json: one JSON object a line;
            --pods: grouped by Kubernetes pod, the sandbox marked; with --json one pod a line)
  collect   the reference collector: ctrwatch collect --listen HOST:PORT --out DIR
            or from a JetStream stream: ctrwatch collect --from nats://HOST:PORT/STREAM --out DIR [--durable NAME]
  rules     list every detection rule with its ATT&CK techniques and default severity
  version   sensor, BPF object and schema versions, and what this kernel offers (--json)
  doctor    check that this node can run the sensor, one line per check
  help      this text

run options:
  --raw              print decoded kernel records instead of container events
  --trace-all        send every fork, exec and exit from the kernel, not only those around containers
  --exec-all         send every exec on the host, not only container tooling's (runtimes, CLIs, nsenter…)
  --ring-mb N        size of each of the two ring buffers in MiB (power of two, default 8)
  --drain-ms N       period of the batch drain in ms (default 10)
  --policy FILE      rules, severities, allowlists (YAML; validated at start, see policy.example.yaml)
  --state-dir DIR    where node state (images seen) is kept (default /var/lib/ctrwatch, or the policy's)
  --log-level L      trace, debug, info, warn, error (default info; env CTRWATCH_LOG)
  --nice=N           the sensor's main thread at nice N, -20..19, or 'off' to keep the inherited one
                     (default -5: it gets the CPU sooner from busy containers, so container starts
                     and detections reach the outputs sooner; it does the same work either way)
  --small-heap       V8 keeps its heap close to what is live (--optimize-for-size): less resident
                     memory on a node with many containers, more CPU per record (bench/REPORT.md)
  --young-mb=N       V8's young generation held at about N MiB, 2..32, or 'off' for V8's own sizing
                     (default 16; V8 alone grows it to 32 under load; node's own
                     --max-semi-space-size, on its command line or in NODE_OPTIONS, wins)
  --heap-growth=N    V8's old generation grows by at most N% (5..300) past what a full collection
                     left before the next, or 'off' for V8's own factor (default 30; node's own
                     --heap-growing-percent wins)
  --check            validate the options and the policy, then exit (0: all good)
${SINK_USAGE}
${COLLECT_USAGE}`;

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** 1 GiB: the ring's size in bytes must fit the addon's 32-bit option (and is far past any need). */
const MAX_RING_MB = 1024;
/** Records sent without a wake-up wait for the drain: past 10 s, start-to-line latency is lost. */
const MAX_DRAIN_MS = 10_000;

function positiveInt(name: string, v: string | undefined, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) <= 0) throw new UsageError(`--${name} must be a positive whole number, got '${v}'`);
  if (Number(v) > max) throw new UsageError(`--${name} must be at most ${max}, got ${v}`);
  return Number(v);
}

/** 'off' (undefined), or a whole number from min to max; `why` says why not below min. */
function offOrRange(name: string, v: string | undefined, dflt: number, min: number, max: number, why: string): number | undefined {
  if (v === 'off') return undefined;
  const n = positiveInt(name, v, dflt, max);
  if (n < min) throw new UsageError(`--${name} must be at least ${min} (${why}), got ${v}`);
  return n;
}

const youngMbFlag = (v: string | undefined) =>
  offOrRange('young-mb', v, YOUNG_MB_DEFAULT, YOUNG_MB_MIN, YOUNG_MB_MAX, 'V8 starts the young generation at that');

const heapGrowthFlag = (v: string | undefined) =>
  offOrRange(
    'heap-growth',
    v,
    HEAP_GROWTH_DEFAULT,
    HEAP_GROWTH_MIN,
    HEAP_GROWTH_MAX,
    'below it a full collection follows almost every promotion',
  );

function niceFlag(v: string | undefined): number | undefined {
  try {
    return parseNice(v);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

async function doctor(log: Logger): Promise<number> {
  const checks = runChecks(log);
  for (const c of checks) process.stdout.write(`${formatCheck(c)}\n`);
  const ok = checks.every((c) => c.ok);
  process.stdout.write(ok ? 'ctrwatch can run on this node\n' : 'ctrwatch cannot run on this node until the FAIL lines are fixed\n');
  return ok ? 0 : 1;
}

const RUN_OPTIONS = {
  'small-heap': { type: 'boolean' },
  'young-mb': { type: 'string' },
  'heap-growth': { type: 'string' },
  raw: { type: 'boolean' },
  'trace-all': { type: 'boolean' },
  'exec-all': { type: 'boolean' },
  'ring-mb': { type: 'string' },
  'drain-ms': { type: 'string' },
  nice: { type: 'string' },
  'log-level': { type: 'string' },
  policy: { type: 'string' },
  'state-dir': { type: 'string' },
  check: { type: 'boolean' },
  ...SINK_FLAGS,
} as const;

async function run(args: string[], log: Logger): Promise<number> {
  const { values } = parse(args, RUN_OPTIONS);
  tuneGc();
  if (values['small-heap']) tuneHeapForSize();
  const youngMb = youngMbFlag(values['young-mb'] as string | undefined);
  const heapGrowth = heapGrowthFlag(values['heap-growth'] as string | undefined);
  let sinks: SinkFlags;
  try {
    sinks = sinkFlags(values);
    parseOutputs(sinks.outputs, { insecurePlaintext: sinks.options.insecurePlaintext });
  } catch (err) {
    if (err instanceof OutputSpecError) throw new UsageError(err.message);
    throw err;
  }
  let policy: Policy = { ...DEFAULT_POLICY };
  if (values.policy) {
    try {
      policy = loadPolicy(values.policy);
    } catch (err) {
      if (err instanceof PolicyError) {
        process.stderr.write(`ctrwatch: bad policy: ${err.message}\n`);
        return 2;
      }
      throw err;
    }
  }
  if (values['state-dir']) policy.stateDir = values['state-dir'];
  const ringMb = positiveInt('ring-mb', values['ring-mb'] as string | undefined, 8, MAX_RING_MB);
  if ((ringMb & (ringMb - 1)) !== 0) throw new UsageError(`--ring-mb must be a power of two, got ${ringMb}`);
  const drainMs = positiveInt('drain-ms', values['drain-ms'] as string | undefined, 10, MAX_DRAIN_MS);
  const nice = niceFlag(values.nice as string | undefined);
  if (values.check) {
    process.stdout.write('configuration ok\n');
    return 0;
  }
  // Refuse at once, in one line, what would otherwise fail deep in libbpf.
  for (const c of [checkPrivileges(), checkBtf()]) {
    if (!c.ok) {
      process.stderr.write(`ctrwatch: cannot run: ${c.detail} — ${c.fix}\n`);
      return 2;
    }
  }
  if (nice !== undefined) applyNice(nice, log);
  // Before the sensor builds its tables (the start-up scan is the first burst).
  if (youngMb !== undefined && !capYoungGeneration(youngMb))
    log.info({ youngMb }, 'young generation not capped: node was started with a flag that sizes it, or V8 has none to watch');
  if (heapGrowth !== undefined && !limitHeapGrowth(heapGrowth))
    log.info({ heapGrowth }, 'heap growth not limited: node was started with --heap-growing-percent, which stands');
  return runSensor({
    logger: log,
    raw: Boolean(values.raw),
    traceAll: Boolean(values['trace-all']),
    execAll: Boolean(values['exec-all']),
    ringBytes: ringMb << 20,
    drainMs,
    out: process.stdout,
    policy,
    sinks,
  });
}

function version(args: string[]): number {
  const { values } = parse(args, { json: { type: 'boolean' }, 'log-level': { type: 'string' } });
  const v = versionInfo(loadBinding(), checkPrivileges().ok);
  process.stdout.write(`${values.json ? JSON.stringify(v) : formatVersion(v)}\n`);
  return 0;
}

/** Every rule: id, techniques, default severity, whether and where it can kill, summary. */
function rules(): number {
  for (const r of RULES) {
    const kill = KILLABLE[r.id] ? `kill:${KILLABLE[r.id]}` : '';
    process.stdout.write(
      `${r.id.padEnd(30)} ${r.techniques.join(',').padEnd(16)} ${r.severity.padEnd(8)} ${kill.padEnd(11)} ${r.summary}\n`,
    );
  }
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  let level: string;
  try {
    level = logLevelFrom(rest);
  } catch (err) {
    process.stderr.write(`ctrwatch: ${(err as Error).message}\n`);
    return 2;
  }
  const log = createLogger(level);
  try {
    switch (cmd) {
      case 'run':
        return await run(rest, log);
      case 'doctor':
        return await doctor(log);
      case 'collect':
        return await collect(rest, log);
      case 'version':
        return version(rest);
      case 'rules':
        return rules();
      case 'ps': {
        const { values } = parse(rest, { json: { type: 'boolean' }, pods: { type: 'boolean' }, 'log-level': { type: 'string' } });
        const cs = listContainers(log);
        const text = values.pods ? (values.json ? formatPodJson(cs) : formatPodTable(cs)) : values.json ? formatJson(cs) : formatTable(cs);
        process.stdout.write(`${text}${text ? '\n' : ''}`);
        return 0;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${cmd}'`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`ctrwatch: ${err.message} (ctrwatch help lists the options)\n`);
      return 2;
    }
    if (err instanceof OutputSpecError || err instanceof CredentialsError) {
      process.stderr.write(`ctrwatch: ${err.message}\n`);
      return 2;
    }
    if ((err as Error).name === 'SensorStartError') {
      process.stderr.write(`ctrwatch: cannot start: ${explainStartError(err)} (ctrwatch doctor checks each piece)\n`);
      return 2;
    }
    log.fatal({ err }, 'ctrwatch failed');
    return 1;
  }
}
