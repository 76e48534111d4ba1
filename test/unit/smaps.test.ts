import { describe, expect, it } from 'vitest';
import { smapsParts } from '../support/smaps';

// The bench's footprint part (bench/footprint.ts) sorts each mapping of /proc/PID/smaps into one part of the sensor's
// resident memory (bench/REPORT-footprint.md). Lines as the kernel writes them; only Rss counts.
const map = (range: string, name: string, rssKb: number) =>
  [
    `${range} r--p 00000000 fe:00 1234${name ? ' '.repeat(20) + name : ' '}`,
    `Size:  ${rssKb * 2} kB`,
    `Rss:   ${rssKb} kB`,
    'Pss:   1 kB',
    'VmFlags: rd mr',
  ].join('\n');

describe('smapsParts', () => {
  it('counts each mapping once, in its part, in MiB', () => {
    const smaps = [
      map('00400000-00500000', '/usr/bin/node', 2048),
      map('00500000-00600000', '/usr/bin/node (deleted)', 1024),
      map('7f0000000000-7f0000100000', '', 4096),
      map('7f0000100000-7f0000200000', '[anon:v8]', 1024),
      map('7f0000200000-7f0000300000', '[stack]', 1024),
      map('7f0000300000-7f0000400000', 'anon_inode:bpf-map', 16388),
      map('7f0000400000-7f0000500000', '/opt/ctrwatch/build/Release/ctrwatch.node', 1536),
      map('7f0000500000-7f0000600000', '/opt/x/node_modules/better-sqlite3/build/Release/better_sqlite3.node', 512),
      map('7f0000600000-7f0000700000', '[heap]', 3072),
      map('7f0000700000-7f0000800000', '/usr/lib/x86_64-linux-gnu/libc.so.6', 1024),
      map('7f0000800000-7f0000900000', '/tmp/a file with spaces', 1024),
    ].join('\n');
    const p = smapsParts(smaps, '/usr/bin/node');
    expect(p.node).toBe(3);
    expect(p.anonymous).toBe(6);
    expect(p.rings).toBeCloseTo(16388 / 1024, 6);
    expect(p.addon).toBe(1.5);
    expect(p.brk).toBe(3);
    expect(p.other).toBe(2.5);
  });
});
