import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { KILLABLE } from '../../src/detect/actions';
import { Containment } from '../../src/contain/containment';
import { decide } from '../../src/contain/decide';
import { RULE_BY_ID } from '../../src/detect/catalog';
import { DEFAULT_POLICY, parsePolicy } from '../../src/detect/policy';
import type { Finding } from '../../src/detect/types';

const actor = (o: Record<string, unknown> = {}) =>
  ({ tgid: 4242, ppid: 4000, startNs: 123_000_000_000n, exe: '/tmp/x', ...o }) as unknown as Finding['actor'];
const finding = (o: Partial<Finding> = {}): Finding => ({
  ruleId: 'drift.exec-new-file',
  severity: 'HIGH',
  message: 'm',
  container: {} as Finding['container'],
  actor: actor(),
  ...o,
});
const guard = { selfPid: 99, imageAllow: [] as string[], trustedCreators: [] as string[] };

describe('containment decisions', () => {
  it('kills only for a kill or dry-run action on a rule that can', () => {
    expect(decide(finding(), undefined, guard)).toEqual({});
    expect(decide(finding(), 'report', guard)).toEqual({});
    expect(decide(finding(), 'kill', guard)).toEqual({ outcome: 'KILLED', path: 'user' });
    expect(decide(finding(), 'dry-run', guard)).toEqual({ outcome: 'WOULD_KILL', path: 'user', reason: 'dry-run' });
    expect(decide(finding({ ruleId: 'image.first-seen' }), 'kill', guard)).toEqual({});
  });

  it('never: outside containers, host PID 1, kernel threads, the sensor, allowlisted images and creators', () => {
    const spared = (f: Finding, g = guard) => decide(f, 'kill', g);
    expect(spared(finding({ container: undefined }))).toMatchObject({ outcome: 'SPARED', reason: 'the actor is not in a container' });
    expect(spared(finding({ actor: actor({ tgid: 1 }) }))).toMatchObject({ outcome: 'SPARED', reason: "the host's PID 1" });
    expect(spared(finding({ actor: actor({ ppid: 2 }) }))).toMatchObject({ outcome: 'SPARED', reason: 'a kernel thread' });
    expect(spared(finding({ actor: actor({ tgid: 99 }) }))).toMatchObject({ outcome: 'SPARED', reason: 'the sensor itself' });
    expect(spared(finding(), { ...guard, image: 'reg/app:1', imageAllow: ['reg/*'] } as typeof guard)).toMatchObject({
      outcome: 'SPARED',
      reason: 'image reg/app:1 is allowlisted',
    });
    expect(spared(finding(), { ...guard, trustedCreators: ['x'] })).toMatchObject({
      outcome: 'SPARED',
      reason: '/tmp/x is a trusted creator',
    });
    expect(spared(finding({ actor: undefined }))).toMatchObject({ outcome: 'SPARED' });
    // An engine's container whose image is not read yet, under an allowlist: spared until it is.
    expect(spared(finding(), { ...guard, imageAllow: ['reg/*'], imageBased: true } as typeof guard)).toMatchObject({
      outcome: 'SPARED',
      reason: 'its image is not known yet and may be allowlisted',
    });
    expect(spared(finding(), { ...guard, imageAllow: ['reg/*'] })).toMatchObject({ outcome: 'KILLED' });
  });

  it('a failed kill is reported with its reason and counted', () => {
    const kills: [number, bigint][] = [];
    const c = new Containment({
      policy: { ...DEFAULT_POLICY, rules: { 'drift.exec-new-file': { enabled: true, action: 'kill' } } },
      selfPid: 1,
      logger: pino({ level: 'silent' }),
      kill: (pid, start) => (kills.push([pid, start]), -3),
    });
    expect(c.apply(finding())).toEqual({ outcome: 'KILL_FAILED', path: 'user', reason: 'ESRCH: the process had already exited' });
    expect(kills).toEqual([[4242, 123_000_000_000n]]);
    expect(c.counts).toMatchObject({ KILL_FAILED: 1, KILLED: 0 });
  });
});

describe('policy action', () => {
  it('takes report, kill and dry-run for rules that can kill, and names the rest', () => {
    const p = parsePolicy('rules:\n  drift.exec-new-file: { action: kill }\n  discovery.runtime-cli: { action: dry-run }\n');
    expect(p.rules['drift.exec-new-file']).toEqual({ enabled: true, action: 'kill' });
    expect(p.rules['discovery.runtime-cli'].action).toBe('dry-run');
    expect(() => parsePolicy('rules:\n  image.first-seen: { action: kill }\n', 'p.yaml')).toThrow(
      /^p\.yaml:2:\d+: rule image\.first-seen cannot kill; rules that can: /,
    );
    expect(() => parsePolicy('rules:\n  drift.exec-new-file: { action: destroy }\n', 'p.yaml')).toThrow(
      /action must be one of report, kill, dry-run, not 'destroy'/,
    );
  });

  it('every rule that can kill is in the catalogue', () => {
    for (const id of Object.keys(KILLABLE)) expect(RULE_BY_ID.has(id), id).toBe(true);
  });
});
