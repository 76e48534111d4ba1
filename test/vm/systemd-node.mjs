#!/usr/bin/env node
// The systemd node check, run INSIDE the VM that test/vm/systemd-vm.sh boots (systemd as PID 1,
// cgroup v2 unified, every runtime on the systemd cgroup driver). It starts `ctrwatch run`, then
// for Docker, Podman and containerd (ctr) starts a container, lists it with `ctrwatch ps`, execs
// into it, stops it, and holds ctrwatch's records to what the runtime itself says: one
// containerCreated/Started/Exec/Exited each, the runtime's own id and name, the init pid, the
// exit code, a systemd scope as cgroup. Prints one PASS/FAIL line per runtime and exits 1 on any
// failure. Plain Node (no build step, no test runner): the project tree is shared read-only.
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
// ctrwatch's own parser and the node's state lookups, as the sensor uses them (built tree).
const require = createRequire(import.meta.url);
const { containerFromProcCgroup } = require(join(ROOT, 'dist/src/meta/cgroup-path.js'));
const { nodeCgroupLookups } = require(join(ROOT, 'dist/src/container/cgroup-lookups.js'));
const IMAGE = 'localhost/busybox:latest';
const EXIT_CODE = 7;
// PID 1 of the container: on the stop signal (SIGTERM) it exits with EXIT_CODE, so the runtime's
// own exit code and ctrwatch's can be compared exactly. `sleep & wait` keeps it interruptible.
const ENTRY = ['/bin/sh', '-c', `trap "exit ${EXIT_CODE}" TERM; /bin/sleep 300 & wait`];
const EXEC = ['/bin/true', 'exec-probe'];
// Under software emulation on a busy host a container start takes seconds and the sensor's
// start a minute: generous bounds, still finite.
const WAIT_MS = Number(process.env.CW_VM_WAIT_MS ?? 120_000);

const sh = (argv, opts = {}) => execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 2 * WAIT_MS, stdio: ['ignore', 'pipe', 'pipe'], ...opts }).trim();
const trySh = (argv) => {
  try {
    return sh(argv);
  } catch {
    return undefined;
  }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(`systemd-node: ${a.join(' ')}\n`);

class Check {
  constructor(name) {
    this.name = name;
    this.failures = [];
    this.facts = {};
  }
  ok(cond, what) {
    if (!cond) this.failures.push(what);
    return cond;
  }
  eq(got, want, what) {
    return this.ok(JSON.stringify(got) === JSON.stringify(want), `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

// ------------------------------------------------------------------ the node is what we claim

function nodeFacts() {
  const c = new Check('node');
  const init = readlinkSync('/proc/1/exe');
  c.ok(/\/systemd$/.test(init), `PID 1 is ${init}, not systemd`);
  let controllers = '';
  try {
    controllers = readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').trim();
  } catch {}
  c.ok(controllers !== '', '/sys/fs/cgroup is not cgroup2 (no cgroup.controllers)');
  c.eq(sh(['docker', 'info', '--format', '{{.CgroupDriver}} {{.CgroupVersion}}']), 'systemd 2', 'docker cgroup driver and version');
  c.eq(sh(['podman', 'info', '--format', '{{.Host.CgroupManager}} {{.Host.CgroupsVersion}}']), 'systemd v2', 'podman cgroup manager and version');
  c.facts = { init, kernel: sh(['uname', '-r']), controllers, docker: sh(['docker', 'version', '--format', '{{.Server.Version}}']),
    podman: sh(['podman', 'version', '--format', '{{.Version}}']), containerd: sh(['containerd', '--version']).split(' ')[2],
    podmanRuntime: sh(['podman', 'info', '--format', '{{.Host.OCIRuntime.Name}}']) };
  return c;
}

// ------------------------------------------------------------------ image from busybox-static

function buildImages(dir) {
  const rootfs = join(dir, 'rootfs');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'etc', 'tmp', 'root', 'run']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  for (const a of ['sh', 'sleep', 'true', 'cat', 'ls']) symlinkSync('busybox', join(rootfs, 'bin', a));
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\n');
  const tar = join(dir, 'rootfs.tar');
  sh(['tar', '-C', rootfs, '-cf', tar, '.']);
  sh(['docker', 'import', tar, IMAGE]);
  sh(['podman', 'import', tar, IMAGE]);
  const archive = join(dir, 'busybox-docker-archive.tar');
  sh(['docker', 'save', '-o', archive, IMAGE]);
  sh(['ctr', '-n', 'default', 'images', 'import', archive]);
}

// ------------------------------------------------------------------ ctrwatch run

class Sensor {
  events = [];
  stderr = [];
  start() {
    this.child = spawn(process.execPath, [join(ROOT, 'bin/ctrwatch'), 'run'], { stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout }).on('line', (l) => {
      try {
        this.events.push(JSON.parse(l));
      } catch {
        this.events.push({ unparsable: l });
      }
    });
    createInterface({ input: this.child.stderr }).on('line', (l) => this.stderr.push(l));
    return this.waitFor((e) => 'sensorReady' in e, 5 * WAIT_MS).then((e) => {
      if (!e) throw new Error(`ctrwatch not ready in ${5 * WAIT_MS} ms: ${this.stderr.slice(-5).join(' | ')}`);
    });
  }
  async waitFor(pred, ms = WAIT_MS) {
    const end = Date.now() + ms;
    for (;;) {
      const e = this.events.find(pred);
      if (e) return e;
      if (this.child.exitCode !== null) throw new Error(`ctrwatch exited with ${this.child.exitCode}: ${this.stderr.slice(-5).join(' | ')}`);
      if (Date.now() > end) return undefined;
      await sleep(25);
    }
  }
  of(kind, id) {
    return this.events.filter((e) => e[kind]?.container?.id === id).map((e) => e[kind]);
  }
  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await done;
    clearTimeout(t);
  }
}

// ------------------------------------------------------------------ runtimes, systemd driver

const RUNTIMES = {
  docker: {
    kind: 'DOCKER', name: 'cw-sd-docker',
    start(c) {
      c.id = sh(['docker', 'run', '-d', '--name', this.name, '--network', 'none', IMAGE, ...ENTRY]);
      c.initPid = Number(sh(['docker', 'inspect', '-f', '{{.State.Pid}}', c.id]));
    },
    exec: (c) => sh(['docker', 'exec', c.id, ...EXEC]),
    stop(c) {
      sh(['docker', 'stop', '-t', '20', c.id]);
      c.exitCode = Number(sh(['docker', 'inspect', '-f', '{{.State.ExitCode}}', c.id]));
    },
    cleanup() { trySh(['docker', 'rm', '-f', this.name]); },
    scope: (id) => `/system.slice/docker-${id}.scope`,
  },
  podman: {
    kind: 'PODMAN', name: 'cw-sd-podman',
    start(c) {
      c.id = sh(['podman', 'run', '-d', '--name', this.name, '--network', 'none', IMAGE, ...ENTRY]);
      c.initPid = Number(sh(['podman', 'inspect', '--format', '{{.State.Pid}}', c.id]));
    },
    exec: (c) => sh(['podman', 'exec', c.id, ...EXEC]),
    stop(c) {
      sh(['podman', 'stop', '-t', '20', c.id]);
      c.exitCode = Number(sh(['podman', 'inspect', '--format', '{{.State.ExitCode}}', c.id]));
    },
    cleanup() { trySh(['podman', 'rm', '-f', this.name]); },
    scope: (id) => `/machine.slice/libpod-${id}.scope`,
  },
  containerd: {
    // ctr has no config for this: runc's systemd driver and a slice:prefix:name cgroup, as CRI
    // passes them when SystemdCgroup = true.
    kind: 'CONTAINERD', name: 'cw-sd-ctr',
    async start(c) {
      c.id = this.name;
      const argv = ['-n', 'default', 'run', '--rm', '--runc-systemd-cgroup', '--cgroup', `system.slice:ctr:${this.name}`, IMAGE, this.name, ...ENTRY];
      // In the foreground: ctr run's exit status is the container's, the runtime's own word.
      this.child = spawn('ctr', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
      this.exit = new Promise((r) => this.child.once('exit', (code) => r(code)));
      let err = '';
      this.child.stderr.on('data', (b) => (err += b));
      for (const end = Date.now() + WAIT_MS; Date.now() < end && this.child.exitCode === null; await sleep(50)) {
        const line = (trySh(['ctr', '-n', 'default', 'tasks', 'ls']) ?? '').split('\n').find((l) => l.split(/\s+/)[0] === this.name);
        if (line && /RUNNING/.test(line)) {
          c.initPid = Number(line.split(/\s+/)[1]);
          return;
        }
      }
      throw new Error(`ctr run did not start ${this.name}: ${err.trim()}`);
    },
    exec: (c) => sh(['ctr', '-n', 'default', 'tasks', 'exec', '--exec-id', 'probe', c.id, ...EXEC]),
    async stop(c) {
      sh(['ctr', '-n', 'default', 'tasks', 'kill', '-s', 'SIGTERM', c.id]);
      c.exitCode = await Promise.race([this.exit, sleep(WAIT_MS).then(() => undefined)]);
    },
    cleanup() {
      this.child?.kill('SIGKILL');
      trySh(['ctr', '-n', 'default', 'tasks', 'rm', '-f', this.name]);
      trySh(['ctr', '-n', 'default', 'containers', 'rm', this.name]);
    },
    scope: (id) => `/system.slice/ctr-${id}.scope`,
  },
};

function procCgroup(pid) {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function psJson() {
  return sh([process.execPath, join(ROOT, 'bin/ctrwatch'), 'ps', '--json'])
    .split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

async function main() {
  const only = process.argv.slice(2);
  const names = only.length ? only : Object.keys(RUNTIMES);
  for (const n of names) if (!RUNTIMES[n]) throw new Error(`unknown runtime ${n} (known: ${Object.keys(RUNTIMES).join(', ')})`);
  const node = nodeFacts();
  log('node', JSON.stringify(node.facts));
  const results = [node];
  if (node.failures.length) return report(results);

  const work = mkdtempSync(join(tmpdir(), 'cw-sd-'));
  const sensor = new Sensor();
  const checks = names.map((n) => Object.assign(new Check(n), { c: {} }));
  try {
    buildImages(work);
    for (const n of names) RUNTIMES[n].cleanup();
    const t0 = Date.now();
    await sensor.start();
    log(`ctrwatch ready in ${Date.now() - t0} ms`);

    // Start every container, then one `ctrwatch ps` must show them all.
    for (const ck of checks) {
      const rt = RUNTIMES[ck.name];
      try {
        await rt.start(ck.c);
        ck.facts.procCgroup = procCgroup(ck.c.initPid);
        // The process that waits on the init (conmon, containerd's shim) and where systemd put it.
        const ppid = Number(readFileSync(`/proc/${ck.c.initPid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
        ck.facts.parent = `${readFileSync(`/proc/${ppid}/comm`, 'utf8').trim()} ${procCgroup(ppid)}`;
        // The fallback when no runtime is in sight: the cgroup path alone, with the node's state dirs.
        const byPath = containerFromProcCgroup(ck.facts.procCgroup ?? '', nodeCgroupLookups());
        ck.eq(byPath && { runtime: byPath.runtime, id: byPath.id }, { runtime: rt.kind, id: ck.c.id }, 'the container named by its cgroup path');
        const started = await sensor.waitFor((e) => e.containerStarted?.container?.id === ck.c.id);
        ck.ok(started, `no containerStarted with the runtime's id ${ck.c.id}`);
        if (!started) {
          const byPid = sensor.events.find((e) => e.containerStarted?.container?.initPid === ck.c.initPid);
          if (byPid) ck.failures.push(`containerStarted for pid ${ck.c.initPid} came with id ${byPid.containerStarted.container.id}, runtime ${byPid.containerStarted.container.runtime}`);
        }
      } catch (err) {
        ck.failures.push(`start: ${err.message}`);
      }
    }
    let ps = [];
    try {
      ps = psJson();
    } catch (err) {
      for (const ck of checks) ck.failures.push(`ctrwatch ps: ${err.message}`);
    }
    for (const ck of checks) {
      if (!ck.c.id) continue;
      const row = ps.filter((p) => p.id === ck.c.id);
      if (ck.eq(row.length, 1, 'ctrwatch ps rows with the id')) {
        ck.eq(row[0].runtime, RUNTIMES[ck.name].kind, 'ctrwatch ps runtime');
        ck.eq(row[0].initPid, ck.c.initPid, 'ctrwatch ps initPid');
        ck.eq(row[0].existing, true, 'ctrwatch ps existing');
        ck.facts.psCgroupPath = row[0].cgroupPath;
      }
    }
    for (const ck of checks) {
      if (!ck.c.id) continue;
      try {
        RUNTIMES[ck.name].exec(ck.c);
        ck.ok(await sensor.waitFor((e) => e.containerExec?.container?.id === ck.c.id), 'no containerExec');
      } catch (err) {
        ck.failures.push(`exec: ${err.message}`);
      }
      try {
        await RUNTIMES[ck.name].stop(ck.c);
        ck.ok(await sensor.waitFor((e) => e.containerExited?.container?.id === ck.c.id), 'no containerExited');
      } catch (err) {
        ck.failures.push(`stop: ${err.message}`);
      }
    }
    await sleep(500); // a second record arriving late would show up here
    for (const ck of checks) if (ck.c.id) verify(ck, sensor);
  } finally {
    for (const n of names) RUNTIMES[n].cleanup();
    await sensor.stop();
    rmSync(work, { recursive: true, force: true });
    if (process.env.CW_VM_OUT) {
      // What ctrwatch said, for a look after the VM is gone (the driver keeps it with VM_KEEP=1).
      writeFileSync(join(process.env.CW_VM_OUT, 'events.jsonl'), sensor.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
      writeFileSync(join(process.env.CW_VM_OUT, 'ctrwatch.stderr'), sensor.stderr.join('\n') + '\n');
    }
  }
  const drops = sensor.stderr.filter((l) => /"level":(50|60)/.test(l));
  if (drops.length) log(`ctrwatch errors:\n${drops.slice(0, 10).join('\n')}`);
  results.push(...checks);
  return report(results);
}

function verify(ck, sensor) {
  const { c } = ck;
  const rt = RUNTIMES[ck.name];
  const one = (kind) => {
    const evs = sensor.of(kind, c.id);
    ck.eq(evs.length, 1, `${kind} records for ${c.id}`);
    return evs[0];
  };
  const created = one('containerCreated');
  const started = one('containerStarted');
  const exec = one('containerExec');
  const exited = one('containerExited');
  for (const [kind, ev] of [['containerCreated', created], ['containerStarted', started], ['containerExited', exited]]) {
    if (!ev) continue;
    ck.eq(ev.container.runtime, rt.kind, `${kind} runtime`);
    ck.eq(ev.container.initPid, c.initPid, `${kind} initPid`);
    ck.eq(ev.container.existing ?? false, false, `${kind} existing`);
  }
  // The kernel's word (the init's /proc/<pid>/cgroup, read while it ran), inside the runtime's
  // systemd scope (crun adds a sub-cgroup of its own under it). The runtime puts the init in its
  // scope before the root change, so the created record already has it.
  const kernelPath = (ck.facts.procCgroup ?? '').split('\n').find((l) => l.startsWith('0::'))?.slice(3);
  const scope = rt.scope(c.id);
  ck.ok(kernelPath === scope || kernelPath?.startsWith(`${scope}/`), `cgroup ${kernelPath} is not in ${scope}`);
  if (started) {
    ck.eq(started.process.argv, ENTRY, 'containerStarted argv');
    ck.eq(started.container.cgroupPath, kernelPath, 'containerStarted cgroupPath');
    ck.facts.cgroupPath = started.container.cgroupPath;
    if (ck.name !== 'containerd') ck.eq(started.container.name, rt.name, 'containerStarted name');
    if (ck.name !== 'containerd') ck.eq(started.container.image, IMAGE, 'containerStarted image');
  }
  if (created) {
    ck.ok(created.container.bundle, 'containerCreated without bundle');
    ck.eq(created.container.cgroupPath, kernelPath, 'containerCreated cgroupPath');
  }
  if (exec) ck.eq(exec.process.argv, EXEC, 'containerExec argv');
  ck.eq(c.exitCode, EXIT_CODE, "the runtime's exit code");
  if (exited) ck.eq(exited.exitCode, c.exitCode, "containerExited exitCode (the runtime's)");
  // The exec was not a new container.
  ck.eq(sensor.events.filter((e) => e.containerCreated && e.containerCreated.container.initPid === exec?.process?.pid).length, 0, 'containerCreated for the exec');
}

function report(results) {
  let failed = 0;
  for (const r of results) {
    const ok = r.failures.length === 0;
    if (!ok) failed++;
    process.stdout.write(`${ok ? 'PASS' : 'FAIL'} ${r.name}${r.facts.cgroupPath ? ` ${r.facts.cgroupPath}` : ''}\n`);
    for (const f of r.failures) process.stdout.write(`     ${f}\n`);
    if (Object.keys(r.facts).length) process.stdout.write(`     facts: ${JSON.stringify(r.facts)}\n`);
  }
  const passed = results.length - failed;
  process.stdout.write(`systemd-node: ${passed} passed, ${failed} failed\n`);
  return failed ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => {
  process.stdout.write(`FAIL systemd-node: ${err.stack ?? err}\n`);
  process.exit(1);
});
