import { describe, expect, it } from 'vitest';
import { canRunKernelTests } from '../support/env';
import { BIN, ctrwatch, runAny } from '../support/run-cli';

/* Root with every capability dropped (bounding set too): unprivileged for BPF, yet a clone
 * under a 0700 /root stays reachable through its owner bits, which a real nobody lacks. */
const unprivileged = (args: string[]) =>
  runAny(['setpriv', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', process.execPath, BIN, ...args]);

describe.runIf(canRunKernelTests)('ctrwatch doctor and run prerequisites', () => {
  it('doctor: one ok line per check and exit 0 where the sensor can run', async () => {
    const r = await ctrwatch(['doctor']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    for (const name of ['privileges', 'btf', 'addon', 'cgroups', 'tracefs', 'bpf']) {
      expect(lines.some((l) => l.startsWith('ok') && l.includes(name))).toBe(true);
    }
    expect(lines.at(-1)).toBe('ctrwatch can run on this node');
  });

  it('doctor and run without privileges: a FAIL line saying what to do, no stack trace', async () => {
    const d = await unprivileged(['doctor']);
    expect(d.code).toBe(1);
    expect(d.stdout).toMatch(/^FAIL {2}privileges .* — run as root/m);
    const r = await unprivileged(['run']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^ctrwatch: cannot run: CapEff 0 lacks CAP_BPF\+CAP_PERFMON and CAP_SYS_ADMIN — run as root/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  });

  it('--log-level takes both spellings and names a bad level', async () => {
    const ok = await ctrwatch(['run', '--log-level=debug', '--check']);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await ctrwatch(['run', '--log-level=loud', '--check']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe("ctrwatch: --log-level must be one of trace, debug, info, warn, error, fatal, silent, got 'loud'");
    const env = await ctrwatch(['rules'], { env: { ...process.env, CTRWATCH_LOG: 'nope' } });
    expect(env.code).toBe(2);
    expect(env.stderr).toContain('CTRWATCH_LOG must be one of');
    expect(env.stderr).not.toMatch(/\n\s+at /);
  });

  it('bad flags are named', async () => {
    const r = await ctrwatch(['run', '--ring-mb', '3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--ring-mb must be a power of two, got 3');
    for (const [flag, v, msg] of [
      ['--ring-mb', '2048', '--ring-mb must be at most 1024, got 2048'],
      ['--drain-ms', '99999999999', '--drain-ms must be at most 10000, got 99999999999'],
      ['--stats-interval-s', '9999999999', '--stats-interval-s must be at most 86400, got 9999999999'],
    ]) {
      const o = await ctrwatch(['run', flag, v, '--check']);
      expect(o.code, o.stderr).toBe(2);
      expect(o.stderr).toContain(msg);
    }
    const n = await ctrwatch(['run', '--nice=-30', '--check']);
    expect(n.code, n.stderr).toBe(2);
    expect(n.stderr).toContain("--nice must be a whole number from -20 to 19, or 'off', got '-30'");
    expect((await ctrwatch(['run', '--nice=off', '--check'])).code).toBe(0);
    const u = await ctrwatch(['run', '--bogus']);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain("Unknown option '--bogus'");
  });
});
