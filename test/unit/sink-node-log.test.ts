// The collector's per-node output: group commit, rotation, and recovery to the last commit.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeLog } from '../../src/collect/node-log';

const logger = pino({ level: 'silent' });
const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrwatch-nodelog-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const line = (n: number) => `{"seq":"${n}","pad":"${'x'.repeat(40)}"}\n`;

describe('NodeLog', () => {
  it('commits lines with their windows, rotates, and after a crash cuts what was not committed', async () => {
    const dir = path.join(tmp(), 'node-a');
    const log = await NodeLog.open({ dir, maxFileBytes: 200, logger });
    const w = log.window('boot/inst');
    const appends: Promise<void>[] = [];
    for (let n = 1; n <= 10; n++) {
      expect(w.accept(BigInt(n))).toBe(true);
      appends.push(log.append(line(n), 1));
    }
    await Promise.all(appends);
    expect(log.commits).toBeLessThan(10); // grouped
    await log.close();
    const files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .sort();
    expect(files.length).toBe(2); // a commit is never split across files
    const all = files.map((f) => fs.readFileSync(path.join(dir, f), 'utf8')).join('');
    expect(all).toBe(Array.from({ length: 10 }, (_, i) => line(i + 1)).join(''));

    // A crash after a write that was never committed: a torn line, and a file rotated into.
    const last = files.at(-1)!;
    fs.appendFileSync(path.join(dir, last), '{"seq":"11","pa');
    fs.writeFileSync(path.join(dir, 'events-999999.jsonl'), line(12));
    const again = await NodeLog.open({ dir, maxFileBytes: 200, logger });
    expect(fs.readFileSync(path.join(dir, last), 'utf8').endsWith(line(10))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'events-999999.jsonl'))).toBe(false);
    const w2 = again.window('boot/inst');
    expect(w2.accept(10n)).toBe(false); // remembered: a resend is a duplicate
    expect(w2.accept(11n)).toBe(true);
    await again.append(line(11), 1);
    await again.close();
  });
});
