import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The addon's trimMalloc (native/malloc_trim.cc), which `ctrwatch run` calls after every sweep
// (src/heap-tuning.ts trimCHeap). Here beside the other tests that need the built addon (no root).
// A child node fills 64 MB of the C heap with Buffers' backing stores (64 KiB each: below glibc's
// mmap threshold, so inside its arena), pins one more above them, frees the 64 MB and collects.
// glibc keeps those pages (they are not the arena's top); the test checks that they stay
// resident without the call, and that the call gives them back.
const ADDON = join(__dirname, '..', '..', 'build', 'Release', 'ctrwatch.node');

const CHILD = `
const addon = require(process.argv[1]);
const mb = () => Number(require('node:fs').readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096 / 1048576;
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  let bufs = [];
  for (let i = 0; i < 1024; i++) bufs.push(Buffer.alloc(64 * 1024, 1));
  const pin = Buffer.alloc(64 * 1024, 1);
  const filled = mb();
  bufs = null;
  // Backing stores are freed by V8's sweeper, maybe on another thread: collect, then give it time.
  gc(); gc();
  await wait(300);
  gc();
  await wait(300);
  const freed = mb();
  const released = process.argv[2] === 'trim' ? addon.trimMalloc() : false;
  const after = mb();
  process.stdout.write(JSON.stringify({ filled, freed, after, released, pinned: pin.length }));
})();
`;

function child(mode: 'trim' | 'none'): { filled: number; freed: number; after: number; released: boolean } {
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', CHILD, ADDON, mode], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { filled: number; freed: number; after: number; released: boolean };
}

describe('trimMalloc: the C heap given back', () => {
  it('the built addon is there (make build)', () => {
    expect(existsSync(ADDON), `${ADDON} is missing: build it with make build`).toBe(true);
  });

  it('freed C heap stays resident without the call, and the call releases it', () => {
    const none = child('none');
    // Freeing alone returned (almost) nothing: otherwise this test could not tell the call's effect.
    expect(none.filled - none.after, JSON.stringify(none)).toBeLessThan(16);
    const trim = child('trim');
    expect(trim.filled - trim.freed, JSON.stringify(trim)).toBeLessThan(16);
    expect(trim.released, JSON.stringify(trim)).toBe(true);
    expect(trim.freed - trim.after, JSON.stringify(trim)).toBeGreaterThan(48);
  });
});
