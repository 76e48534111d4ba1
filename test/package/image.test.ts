// The OCI image of `make package`, without a registry: `ctr image import` and `docker load` both
// take it; containerd runs its executable; and the sensor in it, run by a private dockerd with
// what the DaemonSet (deploy/kubernetes/ctrwatch.yaml) asks for (host PID namespace, every
// capability, its host paths and environment), reaches sensorReady and records a container that
// the same dockerd starts. Host paths the DaemonSet would create (DirectoryOrCreate) are mounted
// only where they exist: the test creates nothing on the host; the state directory and the
// policy come from a temporary directory.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { findCgroupDirs, removeCgroupPaths } from '../support/runtime-cgroup';
import { isRoot, hasBtf, requires, scaled } from '../support/env';
import { run, sleep, ANY_CODE } from '../support/runtime-exec';
import { boundingCapabilities } from '../support/runtime-oci';
import { buildImage, IMAGE_REF } from '../support/runtime-image';
import {
  containerdPaths,
  DOCKER_CLI,
  dockerEnv,
  dockerPaths,
  startContainerd,
  startDockerd,
  stopDaemon,
  type Daemon,
} from '../support/runtime-daemons';
import { artifacts, built, ROOT, VERSION } from './artifacts';

const have = (bin: string) => ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, bin)));
const ready = requires(
  isRoot && hasBtf && built(artifacts.image) && have('dockerd') && have('containerd') && have('ctr') && existsSync(DOCKER_CLI),
  `root, BTF, dockerd, containerd, ctr and make package's image (${artifacts.image})`,
);
const TAG = `ctrwatch:${VERSION}`;

const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy/kubernetes/ctrwatch.yaml'), 'utf8')).map((d) => d.toJS());
const daemonSet = docs.find((d) => d.kind === 'DaemonSet');
const policy = docs.find((d) => d.kind === 'ConfigMap').data['policy.yaml'] as string;

/** docker run flags for the DaemonSet's pod, paths that do not exist on this host left out. */
function podFlags(dir: string): { flags: string[]; command: string[]; left: string[] } {
  const spec = daemonSet.spec.template.spec;
  const c = spec.containers[0];
  const flags: string[] = [];
  const left: string[] = [];
  if (spec.hostPID) flags.push('--pid=host');
  if (c.securityContext?.privileged) {
    // --privileged asks for CAP_SYS_RESOURCE, which this machine's bounding set lacks: the same
    // container by the flags the lab uses (test/support/runtime-engines.ts).
    if (boundingCapabilities().includes('CAP_SYS_RESOURCE')) flags.push('--privileged');
    else {
      flags.push('--cap-add', 'ALL', '--cap-drop', 'SYS_RESOURCE', '--device-cgroup-rule', 'a *:* rwm');
      for (const o of ['seccomp=unconfined', 'apparmor=unconfined', 'systempaths=unconfined']) flags.push('--security-opt', o);
    }
  }
  for (const e of c.env ?? []) flags.push('-e', `${e.name}=${e.value}`);
  for (const m of c.volumeMounts) {
    const v = spec.volumes.find((x: any) => x.name === m.name);
    const ro = m.readOnly ? ':ro' : '';
    let src: string | undefined;
    if (v.configMap) {
      src = join(dir, 'policy');
      mkdirSync(src, { recursive: true });
      writeFileSync(join(src, 'policy.yaml'), policy);
    } else if (v.hostPath.path === '/var/lib/ctrwatch') {
      src = join(dir, 'state');
      mkdirSync(src, { recursive: true });
    } else if (existsSync(v.hostPath.path)) src = v.hostPath.path;
    else left.push(v.hostPath.path);
    if (src) flags.push('-v', `${src}:${m.mountPath}${ro}`);
  }
  return { flags, command: [...c.command, ...c.args], left };
}

describe.runIf(ready)('the OCI image', () => {
  const dir = ready ? mkdtempSync('/var/tmp/ctrwatch-image-') : '';
  const daemons: Daemon[] = [];
  // The cgroups the runtimes make for this test's containers: containerd's namespace
  // (ctrwatch-pkg) and dockerd's parent (docker). Removed after, unless the node had them before.
  const PARENTS = new Set(['ctrwatch-pkg', 'docker']);
  const cgroupsBefore = new Set(ready ? findCgroupDirs(PARENTS) : []);
  afterAll(async () => {
    for (const d of daemons.splice(0).reverse()) stopDaemon(d);
    await sleep(200);
    removeCgroupPaths(findCgroupDirs(PARENTS).filter((p) => !cgroupsBefore.has(p)));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    'ctr image import takes it, and containerd runs its executable',
    async () => {
      const p = containerdPaths(join(dir, 'containerd'));
      daemons.push(await startContainerd(p));
      const ctr = ['ctr', '-a', p.socket, '-n', 'ctrwatch-pkg'];
      await run([...ctr, 'images', 'import', artifacts.image], { timeoutMs: 180_000 });
      const ls = await run([...ctr, 'images', 'ls', '-q']);
      expect(ls.stdout).toContain(`docker.io/library/${TAG}`);
      const r = await run([...ctr, 'run', '--rm', `docker.io/library/${TAG}`, 'ctrwatch-pkg-help', '/usr/bin/ctrwatch', 'help'], {
        timeoutMs: 60_000,
      });
      expect(r.stdout).toMatch(/^usage: ctrwatch/m);
      await run([...ctr, 'images', 'rm', `docker.io/library/${TAG}`], { okCodes: ANY_CODE });
      stopDaemon(daemons.pop()!);
    },
    scaled(300_000),
  );

  it(
    'docker load takes it; run as the DaemonSet runs it, the sensor gets ready and records a container',
    async () => {
      const p = dockerPaths(join(dir, 'docker'));
      daemons.push(await startDockerd(p));
      const env = dockerEnv(p);
      const docker = [DOCKER_CLI, '-H', p.host];
      const loaded = await run([...docker, 'load', '-i', artifacts.image], { env, timeoutMs: 180_000 });
      expect(loaded.stdout).toContain(`Loaded image: ${TAG}`);
      const busybox = await buildImage(join(dir, 'busybox'));
      await run([...docker, 'load', '-i', busybox.dockerArchive], { env });

      const pod = podFlags(dir);
      const [entry, ...args] = pod.command;
      const sensor = (
        await run([...docker, 'run', '-d', '--name', 'ctrwatch-pkg-sensor', ...pod.flags, '--entrypoint', entry!, TAG, ...args], {
          env,
          timeoutMs: 60_000,
        })
      ).stdout.trim();
      // The sensor sees the whole node (other containers, exec storms): follow its output and keep
      // only the lines asked about, never the whole log in memory.
      const logs = spawn(DOCKER_CLI, ['-H', p.host, 'logs', '-f', sensor], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let tail: string[] = [];
      let probeId = '';
      const probeLines: string[] = []; // what the sensor said about the probe container, for a failure
      const seen: Record<string, any>[] = []; // sensorReady and containerStarted only
      const waiting: { ok: (e: Record<string, any>) => boolean; found: (e: Record<string, any>) => void }[] = [];
      createInterface({ input: logs.stdout! }).on('line', (line) => {
        tail = [...tail.slice(-20), line.slice(0, 400)];
        if (probeId && line.includes(probeId.slice(0, 12)) && probeLines.length < 20) probeLines.push(line.slice(0, 600));
        if (!line.startsWith('{') || !(line.includes('"sensorReady"') || line.includes('"containerStarted"'))) return;
        const e = JSON.parse(line) as Record<string, any>;
        if (!e.sensorReady && !e.containerStarted) return;
        seen.push(e);
        for (const w of waiting.filter((x) => x.ok(e))) {
          waiting.splice(waiting.indexOf(w), 1);
          w.found(e);
        }
      });
      createInterface({ input: logs.stderr! }).on('line', (line) => (tail = [...tail.slice(-20), line.slice(0, 400)]));
      const until = (what: string, ok: (e: Record<string, any>) => boolean) =>
        new Promise<Record<string, any>>((resolve, reject) => {
          const already = seen.find(ok);
          if (already) return resolve(already);
          const t = setTimeout(
            () =>
              reject(
                new Error(
                  `no ${what} from the sensor in its image; about the probe:\n${probeLines.join('\n')}\nits last output:\n${tail.join('\n')}`,
                ),
              ),
            scaled(120_000),
          );
          waiting.push({
            ok,
            found: (e) => {
              clearTimeout(t);
              resolve(e);
            },
          });
        });
      try {
        const ready = await until('sensorReady', (e) => !!e.sensorReady);
        expect(ready.sensorReady.version).toBe(VERSION);
        const probe = (
          await run([...docker, 'run', '-d', '--name', 'ctrwatch-pkg-probe', IMAGE_REF, 'sleep', '30'], { env })
        ).stdout.trim();
        probeId = probe;
        // On this machine PID 1's namespaces cannot be read, so the sensor in its container takes
        // its own as the host's and names the node's containers under a synthetic parent
        // (mntns-…/<id>); on a node where PID 1 is readable the id is the probe's alone.
        const started = await until(
          'containerStarted of the probe container',
          (e) => String(e.containerStarted?.container?.id).split('/').pop() === probe,
        );
        // DOCKER where the sensor sees dockerd as the host's; RUNC (the runtime under it) where, as
        // here, dockerd itself looks containerized to it (above).
        expect(['DOCKER', 'RUNC']).toContain(started.containerStarted.container.runtime);
        expect(started.containerStarted.container.initPid).toBeGreaterThan(1);
      } finally {
        logs.kill('SIGKILL');
        await run([...docker, 'rm', '-f', 'ctrwatch-pkg-probe', 'ctrwatch-pkg-sensor'], { env, okCodes: ANY_CODE });
        await run([...docker, 'rmi', '-f', TAG, IMAGE_REF], { env, okCodes: ANY_CODE });
      }
    },
    scaled(600_000),
  );
});
