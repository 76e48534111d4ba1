// `ctrwatch collect`: the collector's own entry point. It depends on proto/ and on the
// collector's files, never on the sensor's sinks; cli.ts only hands it the arguments.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Logger } from 'pino';
import { compileEventCodec } from '../proto/codec';
import { loadEventSchema } from '../proto/schema';
import { runCollector } from './collector';
import { CollectFlagError, COLLECT_FLAGS, collectFlags, FROM_FLAGS, fromFlags } from './flags';
import { JetStreamCollector } from './jetstream';
import { CONSOLE_FLAGS, ConsoleFlagError, consoleFlags, openConsole } from '../console';

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true });
  } catch (err) {
    throw new CollectFlagError((err as Error).message);
  }
}

/** The console's flag errors are usage errors of `collect`, as its own are. */
function consoleFlag<T>(parseFlags: () => T): T {
  try {
    return parseFlags();
  } catch (err) {
    if (err instanceof ConsoleFlagError) throw new CollectFlagError(err.message);
    throw err;
  }
}

function untilSignal(): Promise<void> {
  return new Promise<void>((r) => {
    process.once('SIGINT', r);
    process.once('SIGTERM', r);
  });
}

/** `ctrwatch collect --from nats://HOST:PORT[,…]/STREAM --out DIR [--durable NAME]`: drain a fleet's JetStream stream. */
async function collectJetStream(args: string[], log: Logger): Promise<number> {
  const { values } = parse(args, { ...FROM_FLAGS, 'log-level': { type: 'string' } });
  const { clearTextTokenWarning, ...o } = fromFlags(values);
  if (clearTextTokenWarning) log.warn('the NATS token crosses the network in clear text (--insecure-plaintext)');
  const c = await JetStreamCollector.start({ ...o, codec: compileEventCodec(loadEventSchema()), logger: log });
  log.info({ stream: o.stream, servers: o.servers, tls: !!o.tls, token: !!o.token }, 'collecting from JetStream');
  await untilSignal();
  await c.close();
  log.info({ stats: c.stats() }, 'collector stopped');
  return 0;
}

/** Runs the collector until SIGINT/SIGTERM; resolves with the exit code. Throws CollectFlagError on a bad flag. */
export async function collectMain(args: string[], log: Logger): Promise<number> {
  if (args.some((a) => a === '--from' || a.startsWith('--from='))) return collectJetStream(args, log);
  const { values } = parse(args, { ...COLLECT_FLAGS, ...CONSOLE_FLAGS, 'log-level': { type: 'string' } });
  const o = collectFlags(values);
  const uiFlags = consoleFlag(() => consoleFlags(values, o.outDir));
  const ui = uiFlags && (await openConsole(uiFlags, o, log));
  try {
    const c = await runCollector({ ...o, logger: log, onEvents: ui && ((h, evs) => ui.store.ingest(h, evs)) });
    log.info({ address: c.address, console: ui?.server.url }, 'collector listening');
    await untilSignal();
    await c.close();
  } finally {
    await ui?.close();
  }
  return 0;
}
