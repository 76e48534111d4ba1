// Commands a kernel test runs to their end, whatever their exit code, without blocking the test
// worker: a spawnSync that outlasts vitest's 60 s worker-to-runner call timeout (a doctor under
// emulation takes 20-80 s) makes vitest report an unhandled error and exit 1 with every test passed.

import { join } from 'node:path';
import { ANY_CODE, run, type CommandOptions, type CommandResult } from './runtime-exec';

export const BIN = join(__dirname, '../../bin/ctrwatch');

/** argv to its exit, any exit code (runtime-exec's run: timeout 60 s by default, scaled). */
export const runAny = (argv: string[], o: CommandOptions = {}): Promise<CommandResult> =>
  run(argv, { timeoutMs: 60_000, okCodes: ANY_CODE, ...o });

/** `ctrwatch args…` with this node. */
export const ctrwatch = (args: string[], o: CommandOptions = {}): Promise<CommandResult> => runAny([process.execPath, BIN, ...args], o);
