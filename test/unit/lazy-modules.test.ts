import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/src/cli.js');

/** Packages and our own modules that only some commands or outputs need. */
const HEAVY = ['@grpc/grpc-js', 'nats', 'prom-client', 'dist/src/collect/main.js', 'dist/src/console/server.js'];

// A fresh node loads the built CLI as bin/ctrwatch does, then (argv[2]) one more module, and
// prints which of HEAVY it holds.
const CHILD = `
const [cli, extra, heavy] = [process.argv[1], process.argv[2], JSON.parse(process.argv[3])];
require(cli);
if (extra) require(extra);
const files = Object.keys(require.cache);
console.log(JSON.stringify(heavy.filter((h) => files.some((f) => f.includes('/node_modules/' + h + '/') || f.endsWith('/' + h)))));
`;

function loadedWith(extra = ''): string[] {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run make build first`);
  const r = spawnSync(process.execPath, ['-e', CHILD, CLI, extra, JSON.stringify(HEAVY)], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as string[];
}

describe('modules loaded at start (resident memory of every sensor)', () => {
  it('the CLI, the data path and the sinks load no gRPC, NATS, Prometheus client or collector', () => {
    expect(loadedWith(path.join(ROOT, 'dist/src/data-path.js'))).toEqual([]);
  });

  it('the collector command loads them when it runs (the check sees them)', () => {
    expect(loadedWith(path.join(ROOT, 'dist/src/collect/main.js')).sort()).toEqual(
      ['@grpc/grpc-js', 'dist/src/collect/main.js', 'dist/src/console/server.js', 'nats'].sort(),
    );
    expect(loadedWith(path.join(ROOT, 'dist/src/telemetry/metrics.js'))).toEqual(['prom-client']);
  });
});
