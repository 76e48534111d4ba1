// console: the collector's read-only web console — an SQLite store the collector fills as
// events arrive, a JSON query API over it, a live feed, and the page.

import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { TlsFiles } from '../proto/credentials';
import type { ConsoleFlags } from './flags';
import { startConsole, type RunningConsole } from './server';
import { EventStore } from './store';

export { CONSOLE_FLAGS, consoleFlags, ConsoleFlagError } from './flags';
export { EventStore } from './store';
export { startConsole } from './server';

export interface CollectorConsole {
  store: EventStore;
  server: RunningConsole;
  close(): Promise<void>;
}

/** Open the store and serve the console with the collector's TLS and token settings. */
export async function openConsole(
  f: ConsoleFlags,
  sec: { tls?: TlsFiles; tokenFile?: string; insecurePlaintext?: boolean },
  logger: Logger,
): Promise<CollectorConsole> {
  mkdirSync(path.dirname(path.resolve(f.dbFile)), { recursive: true, mode: 0o750 });
  const store = new EventStore({ file: f.dbFile, logger, maxAgeMs: f.maxAgeMs, maxBytes: f.maxBytes });
  let server: RunningConsole;
  try {
    server = await startConsole({
      store,
      logger,
      tls: sec.tls,
      tokenFile: sec.tokenFile,
      insecurePlaintext: sec.insecurePlaintext,
      listen: f.listen,
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  void store.retain();
  return {
    store,
    server,
    close: async () => {
      await server.close();
      await store.close();
    },
  };
}
