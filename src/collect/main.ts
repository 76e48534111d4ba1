// `ctrwatch collect`: the collector's own entry point. It depends on proto/ and on the
// collector's files, never on the sensor's sinks; cli.ts only hands it the arguments.

import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Logger } from 'pino';
import { compileEventCodec } from '../proto/codec';
import { loadEventSchema } from '../proto/schema';
import { runCollector } from './collector';
import { CollectFlagError, COLLECT_FLAGS, collectFlags } from './flags';
import { JetStreamCollector } from './jetstream';
import { CONSOLE_FLAGS, consoleFlags, openConsole } from '../console';

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true });
  } catch (err) {
    throw new CollectFlagError((err as Error).message);
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
  const { values } = parse(args, {
    from: { type: 'string' },
    out: { type: 'string' },
    durable: { type: 'string' },
    'token-file': { type: 'string' },
    'log-level': { type: 'string' },
  });
  const m = /^nats:\/\/([^/]+)\/([A-Za-z0-9_-]{1,64})$/.exec(values.from ?? '');
  if (!m) throw new CollectFlagError(`--from must be nats://HOST:PORT[,HOST:PORT…]/STREAM, got '${values.from}'`);
  if (!values.out) throw new CollectFlagError('--out DIR is required');
  const token = values['token-file'] ? readFileSync(values['token-file'], 'utf8').split('\n')[0].trim() : undefined;
  const c = await JetStreamCollector.start({
    servers: m[1].split(','),
    stream: m[2],
    durable: values.durable ?? 'ctrwatch-collector',
    outDir: values.out,
    codec: compileEventCodec(loadEventSchema()),
    logger: log,
    token,
  });
  log.info({ stream: m[2], servers: m[1] }, 'collecting from JetStream');
  await untilSignal();
  await c.close();
  log.info({ stats: c.stats() }, 'collector stopped');
  return 0;
}

/** Runs the collector until SIGINT/SIGTERM; resolves with the exit code. Throws CollectFlagError on a bad flag. */
export async function collectMain(args: string[], log: Logger): Promise<number> {
  if (args.includes('--from')) return collectJetStream(args, log);
  const { values } = parse(args, { ...COLLECT_FLAGS, ...CONSOLE_FLAGS, 'log-level': { type: 'string' } });
  const o = collectFlags(values);
  const uiFlags = consoleFlags(values, o.outDir);
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
