import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

// test/vm/report.mjs over made-up VM result directories: what CI's VM step calls pass or fail.
const REPORT = join(__dirname, '../vm/report.mjs');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function vm(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'cw-vmreport-'));
  dirs.push(d);
  const out = join(d, '5.10');
  mkdirSync(out);
  const base = {
    series: '5.10 5.10.0-32-amd64',
    kernel: '5.10.0-32-amd64',
    accel: 'tcg',
    wall: '600',
    'doctor.rc': '0',
    'doctor.txt': 'ok',
  };
  for (const [k, v] of Object.entries({ ...base, ...files })) writeFileSync(join(out, k), v);
  return out;
}

const passing = JSON.stringify({
  testResults: [
    {
      name: join(__dirname, '../kernel/pipeline.test.ts'),
      status: 'passed',
      startTime: 0,
      endTime: 1000,
      assertionResults: [{ status: 'passed', fullName: 'a' }],
    },
  ],
});

function report(out: string) {
  const sum = join(out, '..', 'sum.json');
  const r = spawnSync(process.execPath, [REPORT, '--commit', 'c', '--tree', 'clean', '--command', 't', '--summary', sum, out], {
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, sum: JSON.parse(readFileSync(sum, 'utf8')) };
}

describe('the VM report', () => {
  it('passes a VM whose vitest passed every test and exited 0', () => {
    const r = report(vm({ 'vm.rc': '0', 'vitest.rc': '0', 'vitest.json': passing }));
    expect(r.status).toBe(0);
    expect(r.sum).toEqual({ passed: 1, failed: 0, skipped: 0 });
  });

  it('fails a VM whose time ran out mid-test, counts it, and prints where vitest stood', () => {
    const r = report(vm({ 'vm.rc': '124', 'vitest.log': ' ✓ first test\n ❯ the test that hung' }));
    expect(r.status).toBe(1);
    expect(r.sum.failed).toBe(1);
    expect(r.stdout).toContain('no vitest report (vitest exit none; VM exit 124)');
    expect(r.stdout).toMatch(/\| +❯ the test that hung/);
  });

  it("with the guest's snapshot: prints the processes, and the kernel stacks of those in D or R state only", () => {
    const snap = [
      '  PID  PPID STAT WCHAN   ELAPSED COMMAND',
      '  300   200 D+   rb_wait 30:00 node bin/ctrwatch run',
      '  400   200 S    do_wait 30:00 sh -c sleep',
      '/proc/300/stack node bin/ctrwatch run',
      '[<0>] ringbuf_stuck+0x1/0x2',
      '/proc/400/stack sh -c sleep',
      '[<0>] do_wait_quietly+0x1/0x2',
    ].join('\n');
    const r = report(vm({ 'vm.rc': '124', 'vitest.log': 'x', 'ps-at-timeout.txt': snap }));
    expect(r.stdout).toMatch(/processes 90 s before the VM was killed:\n.*PID.*\n.*node bin\/ctrwatch run\n.*sh -c sleep/);
    expect(r.stdout).toContain('ringbuf_stuck');
    expect(r.stdout).not.toContain('do_wait_quietly');
  });

  it('fails a run where every test passed but vitest exited 1 on an unhandled error, and names it', () => {
    const stall = 'loop-stall: the test worker\'s event loop was blocked 61 s, until 2026-12-02T02:09:22.765Z, in "a test" (x.test.ts)';
    const log = `${stall}\n ✓ a test\n⎯⎯⎯ Unhandled Error ⎯⎯⎯\nError: [vitest-worker]: Timeout calling "onTaskUpdate"\n`;
    const r = report(vm({ 'vm.rc': '0', 'vitest.rc': '1', 'vitest.json': passing, 'vitest.log': log }));
    expect(r.status).toBe(1);
    expect(r.sum).toEqual({ passed: 1, failed: 1, skipped: 0 });
    expect(r.stdout).toContain(
      'vitest exited 1 with every test passed: Error: [vitest-worker]: Timeout calling "onTaskUpdate"\n    | loop-stall: ',
    );
    expect(r.stdout).toContain('blocked 61 s');
  });

  it('with no snapshot (the guest froze): prints the kernel console from its first alarm, not the boot before it', () => {
    const kernelConsole = [
      '[    0.000000] Linux version 6.1.0-50-amd64',
      '[    0.000000] Command line: console=ttyS0 panic=-1',
      '[    1.659871] PCI: Using host bridge windows from ACPI; if necessary, use "pci=nocrs" and report a bug',
      'vmtest[6.1.0-50-amd64]: vitest test/kernel/containers.test.ts',
      '[  612.100000] watchdog: BUG: soft lockup - CPU#1 stuck for 23s! [node:4242]',
      '[  612.100100] RIP: 0010:get_page_from_freelist+0x30d/0x1100',
      ...Array.from({ length: 80 }, (_, i) => `[  613.${String(i).padStart(6, '0')}] trace line ${i}`),
    ].join('\n');
    const r = report(vm({ 'vm.rc': '124', 'vitest.log': 'x', 'console.log': kernelConsole }));
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/kernel's console from its first alarm \(82 line\(s\)\):\n +\| \[ +612\.100000\] watchdog: BUG: soft lockup/);
    expect(r.stdout).toContain('get_page_from_freelist+0x30d');
    expect(r.stdout).toContain('trace line 57');
    expect(r.stdout).not.toContain('trace line 58');
    expect(r.stdout).not.toContain('Linux version');
  });
});
