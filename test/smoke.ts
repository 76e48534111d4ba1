import { KernelSensor } from '../src/kernel/sensor';
import { createLogger } from '../src/log';
import { execFileSync } from 'node:child_process';
const log = createLogger('trace');
const seen: any[] = [];
const s = new KernelSensor({ logger: log }, (b) => seen.push(...b.records));
s.start();
execFileSync('/bin/sh', ['-c', 'echo hi; /bin/true a b c']);
execFileSync('unshare', ['--fork', '--pid', '--mount', '/bin/true', 'x']);
setTimeout(() => {
  s.drain();
  const mine = seen.filter((r) => r.kind !== 'exec' || r.argv.join(' ').includes('true'));
  console.log(JSON.stringify(mine.slice(0, 12), (k, v) => typeof v === 'bigint' ? v.toString() : v, 0).slice(0, 6000));
  console.log(s.counters());
  s.close(); s.close();
}, 100);
