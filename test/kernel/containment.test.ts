import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRunKernelTests } from '../support/env';
import { CtrwatchProcess, type Ev } from '../support/ctrwatch';
import { isAlive, processRef, RuntimeLab, type Started } from '../support/runtimes';

/*/* A dropped busybox, run as sleep, in a container sleeps 30 s unless it is killed; the shell
 * around it prints how it ended. */
const DROP_AND_RUN = ['/bin/sh', '-c', 'cp /bin/busybox /tmp/sleep && /tmp/sleep 30; echo "ended $?"'];

async function sensorWith(dir: string, name: string, lines: string[]): Promise<CtrwatchProcess> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, [...lines, `stateDir: ${dir}`].join('\n'));
  return CtrwatchProcess.start(['--policy', file]);
}

const drift = (cw: CtrwatchProcess, c: Started) =>
  cw
    .waitFor((e) => e.detection?.ruleId === 'drift.exec-new-file' && e.detection.container?.id === c.id, 15_000)
    .then((e) => e.detection as Ev);

describe.runIf(canRunKernelTests)('containment from user space (policy action: kill, dry-run)', () => {
  let lab: RuntimeLab;
  let dir: string;
  beforeAll(async () => {
    lab = await RuntimeLab.open();
    dir = mkdtempSync(join(tmpdir(), 'cw-contain-'));
  });
  afterAll(async () => {
    await lab?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('kill: the dropped program dies at once; its container and an ordinary one keep running', async () => {
    const cw = await sensorWith(dir, 'kill', ['rules:', '  drift.exec-new-file: { action: kill }']);
    try {
      const c = await lab.start('runc', { args: ['/bin/sleep', '300'] });
      const plain = await lab.start('runc', { args: ['/bin/sleep', '300'] });
      const init = processRef(c.initPid!)!;
      const plainInit = processRef(plain.initPid!)!;
      const t0 = Date.now();
      const r = await lab.exec(c, DROP_AND_RUN);
      expect(r.stdout.trim()).toBe('ended 137'); // 128 + SIGKILL
      expect(Date.now() - t0).toBeLessThan(20_000);
      const d = await drift(cw, c);
      expect(d.containment).toEqual({ outcome: 'KILLED', path: 'USER_SPACE' });
      expect(d.chain[0]).toMatchObject({ exe: '/tmp/sleep', argv: ['/tmp/sleep', '30'] });
      expect(isAlive(init)).toBe(true);
      expect((await lab.exec(c, ['/bin/true'])).code).toBe(0);
      expect((await lab.exec(plain, ['/bin/sh', '-c', 'sleep 1; echo ok'])).stdout.trim()).toBe('ok');
      expect(isAlive(plainInit)).toBe(true);
      await lab.stop(c);
      await lab.stop(plain);
    } finally {
      await cw.stop();
    }
  });

  it('dry-run: reported as WOULD_KILL, nothing killed', async () => {
    const cw = await sensorWith(dir, 'dry', ['rules:', '  drift.exec-new-file: { action: dry-run }']);
    try {
      const c = await lab.start('runc', { args: ['/bin/sleep', '300'] });
      const run = lab.exec(c, ['/bin/sh', '-c', 'cp /bin/busybox /tmp/sleep && /tmp/sleep 3; echo "ended $?"']);
      const d = await drift(cw, c);
      expect(d.containment).toEqual({ outcome: 'WOULD_KILL', path: 'USER_SPACE', reason: 'dry-run' });
      expect((await run).stdout.trim()).toBe('ended 0');
      await lab.stop(c);
    } finally {
      await cw.stop();
    }
  });

  it('an allowlisted image is never killed, and the detection says why', async () => {
    const cw = await sensorWith(dir, 'allow', [
      'rules:',
      '  drift.exec-new-file: { action: kill }',
      'images:',
      '  allow: ["localhost/busybox*"]',
    ]);
    try {
      const c = await lab.start('docker', { args: ['/bin/sleep', '300'] });
      const run = lab.exec(c, ['/bin/sh', '-c', 'cp /bin/busybox /tmp/sleep && /tmp/sleep 3; echo "ended $?"']);
      const d = await drift(cw, c);
      expect(d.containment).toMatchObject({
        outcome: 'SPARED',
        path: 'USER_SPACE',
        reason: 'image localhost/busybox:latest is allowlisted',
      });
      expect((await run).stdout.trim()).toBe('ended 0');
      await lab.stop(c);
    } finally {
      await cw.stop();
    }
  });
});
