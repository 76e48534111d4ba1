import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { scaled } from './env';

/** `ctrwatch run` as a child process, its stdout parsed line by line: end to end, as a user runs it. */
export type Ev = Record<string, any>;

export class CtrwatchProcess {
  readonly events: Ev[] = [];
  readonly stderr: string[] = [];
  private child?: ChildProcess;
  private exited?: Promise<number | null>;

  // 60 s (scaled): under emulation, with other test files loading their sensors at once,
  // the load of the programs alone took more than 30 s × 4.
  static async start(args: string[] = [], readyMs = 60_000): Promise<CtrwatchProcess> {
    const p = new CtrwatchProcess();
    try {
      await p.spawn(args, readyMs);
    } catch (err) {
      await p.stop(); // a sensor that never became ready is not left running
      throw err;
    }
    return p;
  }

  private async spawn(args: string[], readyMs: number): Promise<void> {
    const bin = join(__dirname, '../../bin/ctrwatch');
    const child = spawn(process.execPath, [bin, 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((res) => child.once('exit', (code) => res(code)));
    createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        this.events.push(JSON.parse(l));
      } catch {
        this.events.push({ unparsable: l });
      }
    });
    createInterface({ input: child.stderr! }).on('line', (l) => this.stderr.push(l));
    await this.waitFor((e) => 'sensorReady' in e, readyMs).catch((err) => {
      throw new Error(`${err.message}; stderr:\n${this.stderr.slice(-10).join('\n')}`);
    });
  }

  /** The sensor's pid (host view). */
  get pid(): number {
    if (!this.child?.pid) throw new Error('ctrwatch is not running');
    return this.child.pid;
  }

  /** Whether the sensor process is still alive. */
  get alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitFor(pred: (e: Ev) => boolean, ms = 10_000): Promise<Ev> {
    const end = Date.now() + scaled(ms);
    for (;;) {
      const e = this.events.find(pred);
      if (e) return e;
      if (Date.now() > end) throw new Error('event not seen in time');
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined)
        throw new Error(`ctrwatch exited with ${this.child.exitCode}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The first detection of a rule that pred accepts; on a timeout the error lists the last ones seen of that rule. */
  async detection(rule: string, pred: (d: Ev) => boolean = () => true, ms = 10_000): Promise<Ev> {
    try {
      return (await this.waitFor((e) => e.detection?.ruleId === rule && pred(e.detection), ms)).detection;
    } catch (err) {
      const seen = this.events
        .filter((e) => e.detection?.ruleId === rule)
        .map((e) => JSON.stringify({ ...e.detection, chain: undefined, container: e.detection.container?.id }));
      throw new Error(`${rule} not seen; seen of that rule: ${seen.slice(-5).join('\n')}`, { cause: err });
    }
  }

  /** Events of one kind about one container id. */
  of(kind: string, id: string): Ev[] {
    return this.events.filter((e) => e[kind]?.container?.id === id).map((e) => e[kind]);
  }

  async stop(): Promise<number | null> {
    if (!this.child || this.child.exitCode !== null) return this.child?.exitCode ?? null;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child?.kill('SIGKILL'), 10_000);
    const code = await this.exited!;
    clearTimeout(t);
    return code;
  }
}
