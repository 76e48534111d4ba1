// stdout through a real pipe whose reader exits: the sink sees EPIPE, stops writing, counts
// what it could not write, and the process ends cleanly (no crash, no SIGPIPE death).

import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers';

describe('stdout sink on a closed pipe', () => {
  it('stops on EPIPE and counts the rest as dropped', () => {
    const script = path.join(__dirname, 'stdout-epipe.ts');
    const r = spawnSync(
      'bash',
      ['-c', `set -o pipefail; node_modules/.bin/vite-node ${script} | head -n 3 >/dev/null; echo "rc=\${PIPESTATUS[0]}" >&2`],
      { cwd: ROOT, encoding: 'utf8', timeout: 30_000 },
    );
    const report = r.stderr.split('\n').find((l) => l.startsWith('{"closed"'));
    expect(report, r.stderr).toBeDefined();
    const { closed, stats } = JSON.parse(report!) as {
      closed: boolean;
      stats: { delivered: number; dropped: { closed?: Record<string, number> } };
    };
    expect(closed).toBe(true);
    expect(stats.delivered).toBeGreaterThan(0);
    expect(Object.values(stats.dropped.closed ?? {}).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(r.stderr).toContain('rc=0');
  });
});
