import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRunKernelTests, requires } from '../support/env';
import { CtrwatchProcess, type Ev } from '../support/ctrwatch';
import { PodLab, type Pod } from '../support/pod-lab';

/**
 * T1613 by a pod's own credentials (discovery.service-account-token), end to end: a pod made
 * through containerd's CRI as the kubelet makes it, its service-account volume a tmpfs of its own
 * on the host laid out as the kubelet's projected volume (..data symlinks), mounted at
 * /var/run/secrets/kubernetes.io/serviceaccount, the API server told through
 * KUBERNETES_SERVICE_HOST/PORT (a TCP listener on the host's loopback; the pod has the host's
 * network) or listed in the policy.
 */
const SA = '/var/run/secrets/kubernetes.io/serviceaccount';
const RULE = 'discovery.service-account-token';
const STAMP = '..2026_11_30_13_00_00.000000001';

describe.runIf(canRunKernelTests && requires(!!PodLab.cniBinDir(), 'the bridge, host-local and loopback CNI plugins'))(
  'service-account token read then API server connect, in a CRI pod (ctrwatch run)',
  () => {
    let lab: PodLab;
    let cw: CtrwatchProcess;
    let state: string;
    /** The kubelet's per-volume tmpfs, mounted by this test. */
    let volume: string;
    /** A file named token on the host's ordinary filesystem. */
    let decoy: string;
    /** Another pod's service-account volume. */
    let otherVolume: string;
    const mounted: string[] = [];
    let apiEnv: Server;
    let apiPolicy: Server;
    const accepted: Record<string, number> = { env: 0, policy: 0 };
    let pod: Pod;

    const listen = (name: string) =>
      new Promise<Server>((res) => {
        const s = createServer((c: Socket) => {
          accepted[name]++;
          c.end('{}\n');
        });
        s.listen(0, '127.0.0.1', () => res(s));
      });
    const port = (s: Server) => (s.address() as AddressInfo).port;

    beforeAll(async () => {
      state = mkdtempSync(join(tmpdir(), 'cw-token-'));
      volume = join(state, 'pods', 'uid', 'volumes', 'kubernetes.io~projected', 'kube-api-access-x7k2p');
      mkdirSync(volume, { recursive: true });
      otherVolume = join(state, 'pods', 'uid2', 'volumes', 'kubernetes.io~projected', 'kube-api-access-9q8wz');
      for (const v of [volume, otherVolume]) {
        mkdirSync(v, { recursive: true });
        const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', v], { encoding: 'utf8' });
        if (m.status !== 0) throw new Error(`mount tmpfs: ${m.stderr}`);
        mounted.push(v);
        // The kubelet's atomic writer: a timestamped dir, ..data pointing at it, names pointing through ..data.
        mkdirSync(join(v, STAMP));
        writeFileSync(join(v, STAMP, 'token'), 'eyJhbGciOiJSUzI1NiJ9.test.sig');
        writeFileSync(join(v, STAMP, 'namespace'), 'shop');
        symlinkSync(STAMP, join(v, '..data'));
        symlinkSync('..data/token', join(v, 'token'));
        symlinkSync('..data/namespace', join(v, 'namespace'));
      }
      decoy = join(state, 'decoy');
      mkdirSync(decoy);
      writeFileSync(join(decoy, 'token'), 'not a token');

      apiEnv = await listen('env');
      apiPolicy = await listen('policy');
      writeFileSync(
        join(state, 'policy.yaml'),
        `stateDir: ${JSON.stringify(state)}\nkubernetes:\n  apiServers: ["127.0.0.1:${port(apiPolicy)}"]\n`,
      );
      lab = await PodLab.open();
      cw = await CtrwatchProcess.start(['--state-dir', state, '--policy', join(state, 'policy.yaml')]);
      pod = await lab.runPod({ name: 'reader-6f7d', namespace: 'shop', hostNetwork: true });
    });
    afterAll(async () => {
      await cw?.stop();
      await lab?.close();
      apiEnv?.close();
      apiPolicy?.close();
      for (const v of mounted) spawnSync('umount', ['-l', v]);
      rmSync(state, { recursive: true, force: true });
    });

    /** A container of the pod running sh -c script, with the token volume (and the decoy) mounted as the kubelet mounts volumes. */
    async function run(name: string, script: string, extra: { hostPath: string; containerPath: string; readonly: boolean }[] = []) {
      const c = await lab.startContainer(pod, {
        name,
        command: ['/bin/sh', '-c', `${script}; exec sleep 300`],
        mounts: [
          { hostPath: volume, containerPath: SA, readonly: true },
          { hostPath: decoy, containerPath: '/decoy', readonly: true },
          ...extra,
        ],
        envs: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port(apiEnv)) },
      });
      await cw.waitFor((e) => e.containerStarted?.container?.id === c.id, 15_000);
      return c;
    }
    const nc = (s: Server) => `echo x | /bin/busybox nc 127.0.0.1 ${port(s)} >/dev/null`;
    const detsOf = (id: string) =>
      cw.events.filter((e) => e.detection?.ruleId === RULE && e.detection.container?.id === id).map((e) => e.detection as Ev);
    /** Waits until the listener has taken n connections (the container's connect happened). */
    async function connected(name: string, n: number) {
      const end = Date.now() + 15_000;
      while (accepted[name] < n && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      expect(accepted[name], `connections to the ${name} API server`).toBeGreaterThanOrEqual(n);
    }

    it('reads the token through the volume symlinks, then connects to the API server of its environment: MEDIUM, with the pod and the chain', async () => {
      const before = accepted.env;
      const c = await run('curious', `cat ${SA}/token >/dev/null; sleep 1; ${nc(apiEnv)}`);
      const d = await cw.detection(RULE, (x) => x.container?.id === c.id, 20_000);
      await connected('env', before + 1);
      expect(d.severity).toBe('MEDIUM');
      expect(d.techniques).toEqual(['T1613']);
      expect(d.message).toContain(`connected to the Kubernetes API server 127.0.0.1:${port(apiEnv)}`);
      expect(d.message).toContain(`cat (pid ${d.attributes.tokenReaderPid}) read its service-account token ${SA}/${STAMP}/token`);
      expect(d.attributes.pod).toBe('shop/reader-6f7d');
      expect(d.attributes.apiServer).toBe(`127.0.0.1:${port(apiEnv)}`);
      expect(d.attributes.apiServerFrom).toBe('env');
      // The file the kernel opened, named from its dentries: the timestamped dir behind ..data.
      expect(d.attributes.token).toBe(`${SA}/${STAMP}/token`);
      expect(d.attributes.tokenPod).toBe('shop/reader-6f7d');
      expect(d.attributes.tokenReader).toBe('cat');
      expect(d.attributes.result).toBe('0');
      expect(Number(d.attributes.readToConnectMs)).toBeGreaterThanOrEqual(900);
      expect(d.container.id).toBe(c.id);
      expect(d.container.pod).toMatchObject({ name: 'reader-6f7d', namespace: 'shop', containerName: 'curious', sandboxId: pod.id });
      // The chain: nc (busybox), then the container's shell.
      expect(d.chain[0].argv.slice(0, 2)).toEqual(['/bin/busybox', 'nc']);
      expect(d.chain[1].argv.slice(0, 2)).toEqual(['/bin/sh', '-c']);
      expect(Number(d.attributes.tokenReaderPid)).not.toBe(d.chain[0].pid);
      expect(detsOf(c.id)).toHaveLength(1);
    });

    it('the same read through /proc/self/root, then a connect to the API server the policy lists', async () => {
      const before = accepted.policy;
      const c = await run('by-root', `cat /proc/self/root${SA}/..data/token >/dev/null; ${nc(apiPolicy)}`);
      const d = await cw.detection(RULE, (x) => x.container?.id === c.id, 20_000);
      await connected('policy', before + 1);
      expect(d.severity).toBe('MEDIUM');
      expect(d.attributes.apiServer).toBe(`127.0.0.1:${port(apiPolicy)}`);
      expect(d.attributes.apiServerFrom).toBe('policy');
      expect(d.attributes.token).toBe(`${SA}/${STAMP}/token`);
      expect(d.attributes.tokenReader).toBe('cat');
    });

    it('a read of the open token fd through /proc/self/fd, then a connect', async () => {
      const c = await run('by-fd', `exec 3<${SA}/namespace; cat /proc/self/fd/3 >/dev/null; ${nc(apiEnv)}`);
      const d = await cw.detection(RULE, (x) => x.container?.id === c.id, 20_000);
      // The last read before the connect is cat's reopen of the shell's fd through /proc/self/fd (the
      // shell's own open counts too: any file of the volume is the pod's secret).
      expect(d.attributes.tokenReader).toBe('cat');
      expect(d.attributes.token).toMatch(new RegExp(`^${SA}/${STAMP.replace(/\./g, '\\.')}/namespace$`));
    });

    it("another pod's token, reached through a mount of the kubelet's directory: HIGH, naming that pod", async () => {
      const victim = await lab.runPod({ name: 'victim-2b9x', namespace: 'kube-system', hostNetwork: true });
      const v = await lab.startContainer(victim, {
        name: 'controller',
        command: ['/bin/sleep', '300'],
        mounts: [{ hostPath: otherVolume, containerPath: SA, readonly: true }],
      });
      await cw.waitFor((e) => e.containerStarted?.container?.id === v.id, 15_000);
      const c = await run('thief', `cat /stolen/token >/dev/null; ${nc(apiEnv)}`, [
        { hostPath: otherVolume, containerPath: '/stolen', readonly: true },
      ]);
      const d = await cw.detection(RULE, (x) => x.container?.id === c.id, 20_000);
      expect(d.severity).toBe('HIGH');
      expect(d.attributes.pod).toBe('shop/reader-6f7d');
      expect(d.attributes.tokenPod).toBe('kube-system/victim-2b9x');
      expect(d.attributes.token).toBe(`${SA}/${STAMP}/token`);
      expect(d.message).toContain("read pod kube-system/victim-2b9x's service-account token");
    });

    it('quiet: a token read alone, a connect alone, and a file named token on another filesystem', async () => {
      const [envBefore] = [accepted.env];
      const readOnly = await run('read-only', `cat ${SA}/token >/dev/null`);
      const connectOnly = await run('connect-only', nc(apiEnv));
      const decoyRead = await run('decoy', `cat /decoy/token >/dev/null; ${nc(apiEnv)}`);
      await connected('env', envBefore + 2);
      // A positive control in the same window: the sensor is seeing reads and connects now.
      const control = await run('control', `cat ${SA}/token >/dev/null; ${nc(apiEnv)}`);
      await cw.detection(RULE, (x) => x.container?.id === control.id, 20_000);
      await new Promise((r) => setTimeout(r, 1500));
      for (const c of [readOnly, connectOnly, decoyRead]) expect(detsOf(c.id), c.name).toEqual([]);
    });
  },
);
