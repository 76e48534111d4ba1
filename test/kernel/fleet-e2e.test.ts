import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canRunKernelTests } from '../support/env';
import { CtrwatchProcess } from '../support/ctrwatch';
import { RuntimeLab } from '../support/runtimes';
import { freePort } from '../support/net';

const BIN = join(__dirname, '../../bin/ctrwatch');
const lines = (dir: string) =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.jsonl'))
        .sort()
        .flatMap((f) =>
          readFileSync(join(dir, f), 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l)),
        )
    : [];

describe.runIf(canRunKernelTests)('a real sensor ships to NATS JetStream and ctrwatch collect drains it', () => {
  it('a real container arrives through the stream, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-fleet-'));
    const port = await freePort();
    const procs: ChildProcess[] = [];
    let cw: CtrwatchProcess | undefined;
    const lab = await RuntimeLab.open();
    try {
      const nats = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'js')], { stdio: 'ignore' });
      procs.push(nats);
      await new Promise((r) => setTimeout(r, 500));
      cw = await CtrwatchProcess.start([
        '--output',
        'stdout',
        '--output',
        `nats://127.0.0.1:${port}/ctrwatch.events?stream=CTRWATCH`,
        '--spool-dir',
        join(dir, 'spool'),
        '--state-dir',
        join(dir, 'state'),
      ]);
      const c = await lab.start('crun', { args: ['/bin/sleep', '300'] });
      const st = await cw.waitFor((e) => e.containerStarted?.container?.id === c.id);
      const col = spawn(process.execPath, [BIN, 'collect', '--from', `nats://127.0.0.1:${port}/CTRWATCH`, '--out', join(dir, 'out')], {
        stdio: 'ignore',
      });
      procs.push(col);
      const end = Date.now() + 20_000;
      let got: Record<string, any>[] = [];
      while (Date.now() < end) {
        got = lines(join(dir, 'out', hostname()));
        if (got.some((e) => e.containerStarted?.container?.id === c.id)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const started = got.filter((e) => e.containerStarted?.container?.id === c.id);
      expect(started).toHaveLength(1);
      expect(started[0]).toEqual(st);
      await lab.stop(c);
    } finally {
      await cw?.stop();
      for (const p of procs.reverse()) {
        if (p.exitCode === null) {
          p.kill('SIGTERM');
          await new Promise((r) => p.once('exit', r));
        }
      }
      await lab.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
