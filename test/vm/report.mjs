// Pass/fail table of a vmtest run, from the result directories test/vm/guest.sh filled.
// A skipped test counts as a failure (in a VM every real-kernel test must run) and is named.
// Usage: node report.mjs --commit C --tree clean|dirty --command CMD [--doc FILE] [--summary FILE] DIR…
// --summary writes {passed, failed, skipped} over every VM, a doctor failure, a VM that did not
// boot, a vitest that wrote no report and one that failed with every test passed counting as
// one failed test each (the CI adds these to the host suite's line).
// Prints the table (markdown) and exits 1 when anything failed, was skipped, or did not boot.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';

const args = process.argv.slice(2);
const opt = {};
const dirs = [];
for (let i = 0; i < args.length; i++) {
  if (args[i].startsWith('--')) opt[args[i].slice(2)] = args[++i];
  else dirs.push(args[i]);
}
const root = process.cwd();
const read = (d, f) => (existsSync(join(d, f)) ? readFileSync(join(d, f), 'utf8').trim() : undefined);
const secs = (s) => (s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`);

/** The verifier's or libbpf's reason for a failed load (program, source line, error), from doctor's debug output. */
function loadReason(text) {
  if (!text) return undefined;
  const lines = text
    .split('\n')
    .map((l) => {
      try {
        return String(JSON.parse(l).msg ?? '');
      } catch {
        return l;
      }
    })
    .flatMap((l) => l.split('\n'));
  const bad =
    /unknown func|invalid (func|argument|mem|access)|not allowed|unsupported|R\d+ .*expected|cannot use helper|failed to (find|resolve)/;
  let i = lines.findIndex((l) => bad.test(l));
  if (i < 0) i = lines.findIndex((l) => /failed to load|verifier/.test(l));
  if (i < 0) return undefined;
  const prog = lines
    .slice(0, i + 1)
    .reverse()
    .map((l) => /prog '([^']+)'/.exec(l)?.[1])
    .find(Boolean);
  const src = lines
    .slice(0, i)
    .reverse()
    .find((l) => l.startsWith('; '));
  return [prog && `prog ${prog}`, src && `at \`${src.slice(2).trim()}\``, lines[i].trim()].filter(Boolean).join(': ');
}

const rows = [];
const problems = [];
/** Lines quoted under a problem, each on its own indented line. */
const quote = (lines) => lines.map((l) => `\n    | ${l}`).join('');

/** guest.sh's snapshot before the VM was killed: the processes, and the kernel stacks of those
 *  running or in uninterruptible sleep (where a hang sits). */
function snapshot(d) {
  const text = read(d, 'ps-at-timeout.txt');
  if (!text) return '';
  const blocks = text.split(/\n(?=\/proc\/\d+\/stack )/);
  const ps = blocks[0].split('\n');
  const busy = new Set(ps.filter((l) => /^\s*\d+\s+\d+\s+[DR]/.test(l)).map((l) => l.trim().split(/\s+/)[0]));
  const stacks = blocks.slice(1).filter((b) => busy.has(/^\/proc\/(\d+)\//.exec(b)?.[1]));
  return `\n  processes 90 s before the VM was killed:${quote(ps.slice(0, 80))}${stacks.length ? `\n  kernel stacks of those running or in D state:${quote(stacks.join('\n').split('\n').slice(0, 120))}` : ''}`;
}
/** The kernel's own alarms from the VM's console (boot.sh shows the kernel console, guest.sh
 *  lets errors through): from the first soft lockup, RCU stall, hung task or BUG, 60 lines. */
function kernelAlarm(d) {
  const lines = (read(d, 'console.log') ?? '').split('\n').filter((l) => /^\[\s*\d+\.\d+\]/.test(l));
  const at = lines.findIndex((l) =>
    /soft lockup|hard LOCKUP|rcu: INFO: .*stall|blocked for more than \d+ seconds|BUG: |Oops|Kernel panic/.test(l),
  );
  if (at < 0) return '';
  return `\n  the kernel's console from its first alarm (${lines.length - at} line(s)):${quote(lines.slice(at, at + 60))}`;
}
const files = new Set();
for (const d of dirs) {
  const [series, kver] = (read(d, 'series') ?? `${basename(d)} ?`).split(' ');
  const row = { series, kver, accel: read(d, 'accel') ?? '?', wall: Number(read(d, 'wall') ?? 0), files: {}, broken: 0 };
  rows.push(row);
  if (!read(d, 'kernel')) {
    row.doctor = 'DID NOT BOOT';
    const con = (read(d, 'console.log') ?? '').split('\n').slice(-5).join(' / ');
    problems.push(`${series}: the VM did not boot or guest.sh never ran (exit ${read(d, 'vm.rc')}): ${con}`);
    continue;
  }
  row.kver = read(d, 'kernel');
  const drc = read(d, 'doctor.rc');
  if (drc === '0') row.doctor = 'pass';
  else {
    row.doctor = 'FAIL';
    const failed = (read(d, 'doctor.txt') ?? '')
      .split('\n')
      .filter((l) => /^FAIL\b/.test(l))
      .map((l) => l.replace(/\s+/g, ' '));
    const reason = loadReason(read(d, 'doctor-debug.txt'));
    problems.push(
      `${series}: ctrwatch doctor failed (exit ${drc}): ${failed.slice(0, 3).join(' | ')}${reason ? `\n    verifier/libbpf: ${reason}` : ''}`,
    );
  }
  const json = read(d, 'vitest.json');
  if (!json && drc !== '0') {
    row.notRun = true;
    problems.push(`${series}: tests not run: doctor failed`);
    continue;
  }
  if (!json) {
    if (existsSync(join(d, 'vitest.rc')) || read(d, 'vm.rc') !== '0') {
      // where vitest stood when it stopped or the VM's time ran out: its last lines name the test
      const tail = quote((read(d, 'vitest.log') ?? '(no vitest.log)').trimEnd().split('\n').slice(-15));
      row.broken++;
      problems.push(
        `${series}: no vitest report (vitest exit ${read(d, 'vitest.rc') ?? 'none'}; VM exit ${read(d, 'vm.rc')}); vitest.log ends:${tail}${snapshot(d)}${kernelAlarm(d)}`,
      );
    }
    continue;
  }
  const r = JSON.parse(json);
  for (const f of r.testResults) {
    const name = relative(root, f.name);
    files.add(name);
    const a = f.assertionResults ?? [];
    const c = { passed: 0, failed: 0, skipped: 0, time: (f.endTime - f.startTime) / 1000 };
    for (const t of a) {
      if (t.status === 'passed') c.passed++;
      else if (t.status === 'failed') {
        c.failed++;
        problems.push(`${series}: FAILED ${name} > ${t.fullName}: ${(t.failureMessages?.[0] ?? '').split('\n')[0].slice(0, 300)}`);
      } else {
        c.skipped++;
        problems.push(`${series}: SKIPPED ${name} > ${t.fullName}`);
      }
    }
    if (f.status === 'failed' && a.every((t) => t.status !== 'failed')) {
      c.failed++;
      problems.push(`${series}: FAILED ${name} (file): ${(f.message ?? '').split('\n')[0].slice(0, 300)}`);
    }
    row.files[name] = c;
  }
  // Every test passed, yet vitest failed: an unhandled error (the log names it).
  const vrc = read(d, 'vitest.rc');
  if (vrc !== '0' && !problems.some((p) => p.startsWith(`${series}: FAILED`))) {
    const log = (read(d, 'vitest.log') ?? '').split('\n');
    const at = log.findIndex((l) => /Unhandled (Error|Rejection)/.test(l));
    row.broken++;
    const what = at < 0 ? undefined : log.slice(at + 1).find((l) => /^\w*(Error|Rejection)\b/.test(l));
    // test/support/loop-stall.ts names what held a test worker's event loop 20 s or more
    const stalls = quote(log.filter((l) => l.startsWith('loop-stall: ')));
    problems.push(`${series}: vitest exited ${vrc ?? 'none'} with every test passed${what ? `: ${what}` : ''}${stalls}`);
  }
}

const cols = [...files];
const head = ['series', 'kernel', 'VM', 'doctor', ...cols.map((f) => basename(f, '.test.ts')), 'VM wall time'];
const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
for (const r of rows) {
  const cells = cols.map((f) => {
    const c = r.files[f];
    return c ? `${c.passed}/${c.failed}/${c.skipped} (${secs(c.time)})` : r.notRun ? 'not run' : '—';
  });
  lines.push(`| ${[r.series, r.kver, r.accel, r.doctor, ...cells, secs(r.wall)].join(' | ')} |`);
}
const table = lines.join('\n');
const legend =
  'Test cells: passed/failed/skipped (time in the file). A skipped test counts as a failure; "not run": doctor failed, so the tests were not started (a failure too).';
const verdict = problems.length
  ? `${problems.length} problem(s):\n${problems.map((p) => `- ${p}`).join('\n')}`
  : 'every kernel: doctor passed, every test ran and passed.';
console.log(`${table}\n\n${legend}\n\n${verdict}`);

if (opt.doc) {
  const md = `# Kernels ctrwatch was proved on

Written by \`${opt.command}\` (test/vm/run.sh) on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC,
measuring commit \`${opt.commit}\` (tree ${opt.tree}). Each kernel is Debian's own package, booted
under qemu (${[...new Set(rows.map((r) => r.accel))].join(', ')}: "tcg" is software emulation, used when KVM does not work on the machine)
with virtme-ng, the machine's root filesystem shared read-only, cgroup v2 unified at
/sys/fs/cgroup, tmpfs scratch space for the runtimes, 2 vCPUs and 4 GB. In each VM:
\`ctrwatch doctor\`, then the real-kernel test files with vitest. Times under software
emulation are several times those on hardware: compare them only with each other.

${table}

${legend}

${verdict}
`;
  // The sections other tools write (## systemd nodes, by make vmtest-systemd) stay as they are.
  const old = existsSync(opt.doc) ? readFileSync(opt.doc, 'utf8') : '';
  const kept = old.indexOf('\n## systemd nodes');
  writeFileSync(opt.doc, kept >= 0 ? `${md}${old.slice(kept)}` : md);
}
if (opt.summary) {
  const sum = { passed: 0, failed: 0, skipped: 0 };
  for (const r of rows) {
    if (r.doctor !== 'pass') sum.failed++;
    sum.failed += r.broken;
    for (const c of Object.values(r.files)) {
      sum.passed += c.passed;
      sum.failed += c.failed;
      sum.skipped += c.skipped;
    }
  }
  writeFileSync(opt.summary, JSON.stringify(sum));
}
process.exitCode = problems.length ? 1 : 0;
