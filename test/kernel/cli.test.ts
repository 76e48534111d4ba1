import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canRunKernelTests, scaled } from '../support/env';

const BIN = join(__dirname, '../../bin/ctrwatch');
const ctrwatch = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: scaled(60_000) });
/* Root with every capability dropped (bounding set too): unprivileged for BPF, yet a clone
 * under a 0700 /root stays reachable through its owner bits, which a real nobody lacks. */
const unprivileged = (args: string[]) =>
  spawnSync('setpriv', ['--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', process.execPath, BIN, ...args], {
    encoding: 'utf8',
    timeout: scaled(60_000),
  });

describe.runIf(canRunKernelTests)('ctrwatch doctor and run prerequisites', () => {
  it('doctor: one ok line per check and exit 0 where the sensor can run', () => {
    const r = ctrwatch(['doctor']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    for (const name of ['privileges', 'btf', 'addon', 'cgroups', 'tracefs', 'bpf']) {
      expect(lines.some((l) => l.startsWith('ok') && l.includes(name))).toBe(true);
    }
    expect(lines.at(-1)).toBe('ctrwatch can run on this node');
  });

  it('doctor and run without privileges: a FAIL line saying what to do, no stack trace', () => {
    const d = unprivileged(['doctor']);
    expect(d.status).toBe(1);
    expect(d.stdout).toMatch(/^FAIL {2}privileges .* — run as root/m);
    const r = unprivileged(['run']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toMatch(/^ctrwatch: cannot run: CapEff 0 lacks CAP_BPF\+CAP_PERFMON and CAP_SYS_ADMIN — run as root/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  });

  it('--log-level takes both spellings and names a bad level', () => {
    const ok = ctrwatch(['run', '--log-level=debug', '--check']);
    expect(ok.status, ok.stderr).toBe(0);
    const bad = ctrwatch(['run', '--log-level=loud', '--check']);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toBe("ctrwatch: --log-level must be one of trace, debug, info, warn, error, fatal, silent, got 'loud'");
    const env = spawnSync(process.execPath, [BIN, 'rules'], { encoding: 'utf8', env: { ...process.env, CTRWATCH_LOG: 'nope' } });
    expect(env.status).toBe(2);
    expect(env.stderr).toContain('CTRWATCH_LOG must be one of');
    expect(env.stderr).not.toMatch(/\n\s+at /);
  });

  it('bad flags are named', () => {
    const r = ctrwatch(['run', '--ring-mb', '3']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--ring-mb must be a power of two, got 3');
    for (const [flag, v, msg] of [
      ['--ring-mb', '2048', '--ring-mb must be at most 1024, got 2048'],
      ['--drain-ms', '99999999999', '--drain-ms must be at most 10000, got 99999999999'],
      ['--stats-interval-s', '9999999999', '--stats-interval-s must be at most 86400, got 9999999999'],
    ]) {
      const o = ctrwatch(['run', flag, v, '--check']);
      expect(o.status, o.stderr).toBe(2);
      expect(o.stderr).toContain(msg);
    }
    const n = ctrwatch(['run', '--nice=-30', '--check']);
    expect(n.status, n.stderr).toBe(2);
    expect(n.stderr).toContain("--nice must be a whole number from -20 to 19, or 'off', got '-30'");
    expect(ctrwatch(['run', '--nice=off', '--check']).status).toBe(0);
    const u = ctrwatch(['run', '--bogus']);
    expect(u.status).toBe(2);
    expect(u.stderr).toContain("Unknown option '--bogus'");
  });
});
