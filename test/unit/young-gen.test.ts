import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { capYoungGeneration, YOUNG_MB_DEFAULT, youngSizedByNode } from '../../src/young-gen';
import { checkRunOption } from '../support/run-check';

const ADDON = join(__dirname, '../../build/Release/ctrwatch.node');

// A child node churns through short-lived objects while keeping some (records in flight and
// tables), as the pipeline does, then reports V8's young generation, committed bytes.
const CHILD = `
const v8 = require('node:v8');
const addon = require(${JSON.stringify(ADDON)});
const mb = Number(process.argv[1]);
const capped = mb > 0 ? addon.capYoungGen(mb * 1048576) : false;
const young = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
let keep = [], most = 0;
for (let i = 0; i < 3000000; i++) {
  const o = { i, s: 'x' + (i % 1000), a: [i, i + 1] };
  if (i % 50 === 0) keep.push(o);
  if (keep.length > 20000) keep = keep.slice(10000);
  if (i % 10000 === 0) most = Math.max(most, young());
}
process.stdout.write(JSON.stringify({ capped, most, state: addon.youngGenCap() }));
`;

function churn(mb: number): { capped: boolean; most: number; state: { cap: number; frozen: boolean; toggles: number } | null } {
  const r = spawnSync(process.execPath, ['-e', CHILD, String(mb)], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as ReturnType<typeof churn>;
}

describe("V8's young generation capped (native/young_gen.cc)", () => {
  it('grows to its largest without the cap, and stays at the cap with it', () => {
    const free = churn(0);
    expect(free.most).toBeGreaterThan(16 << 20);
    expect(free.state).toBeNull();
    const capped = churn(8);
    expect(capped.capped).toBe(true);
    // V8's page bookkeeping adds a little over the two semi-spaces.
    expect(capped.most).toBeLessThanOrEqual((8 << 20) * 1.05);
    expect(capped.state).toMatchObject({ cap: 8 << 20 });
    expect(capped.state!.toggles).toBeGreaterThan(0);
  }, 60_000);

  it('is set once, with a size', () => {
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        `const a = require(${JSON.stringify(ADDON)}); const e = (f) => { try { f(); return 'ok'; } catch (x) { return x.message; } };
process.stdout.write(JSON.stringify([e(() => a.capYoungGen(0)), e(() => a.capYoungGen('8')), e(() => a.capYoungGen(8 << 20)), e(() => a.capYoungGen(8 << 20))]));`,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      'capYoungGen: bytes must be a positive number',
      'capYoungGen: bytes must be a positive number',
      'ok',
      'capYoungGen: already capped',
    ]);
  });
});

describe('capYoungGeneration', () => {
  it("leaves the young generation to node's own flags, on its command line or in NODE_OPTIONS", () => {
    const binding = { capYoungGen: vi.fn(() => true) };
    expect(capYoungGeneration(8, binding, ['--max-semi-space-size=4'], '')).toBe(false);
    expect(capYoungGeneration(8, binding, [], '--max-old-space-size=500 --max_semi_space_size=4')).toBe(false);
    expect(capYoungGeneration(8, binding, ['--semi-space-growth-factor=1'], '')).toBe(false);
    expect(binding.capYoungGen).not.toHaveBeenCalled();
    expect(capYoungGeneration(YOUNG_MB_DEFAULT, binding, ['--max-old-space-size=500'], '--expose-gc')).toBe(true);
    expect(binding.capYoungGen).toHaveBeenCalledWith(YOUNG_MB_DEFAULT << 20);
    expect(youngSizedByNode(['--min-semi-space-size=2'], '')).toBe(true);
    expect(youngSizedByNode([], '')).toBe(false);
  });
});

describe('ctrwatch run --young-mb', () => {
  it('takes 2..32 or off, and names the flag when it is wrong', async () => {
    await checkRunOption(
      '--young-mb',
      ['--young-mb=2', '--young-mb=32', '--young-mb=off'],
      ['--young-mb=1', '--young-mb=33', '--young-mb=8MB', '--young-mb='],
    );
  });
});
