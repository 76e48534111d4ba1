import { spawn } from 'node:child_process';
import { copyFileSync, linkSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRunKernelTests, requires, scaled } from '../support/env';
import { CtrwatchProcess, type Ev } from '../support/ctrwatch';
import { PodLab, WORKLOAD_REF, type Pod, type PodContainer } from '../support/pod-lab';
import { processRef, signal } from '../support/runtime-proc';
import { ctrwatch } from '../support/run-cli';
import { criClients } from '../../src/container/cri-clients';

const T1611_START = ['escape.privileged-container', 'escape.host-namespaces', 'escape.sensitive-mount'];

describe.runIf(canRunKernelTests && requires(!!PodLab.cniBinDir(), 'the bridge, host-local and loopback CNI plugins'))(
  'Kubernetes pods through containerd CRI (ctrwatch run)',
  () => {
    let lab: PodLab;
    let cw: CtrwatchProcess;
    let state: string;
    /** The node binary under an exe path the policy trusts as the kubelet. */
    let kubelet: string;

    beforeAll(async () => {
      state = mkdtempSync(join(tmpdir(), 'cw-state-'));
      kubelet = join(state, 'kubelet');
      try {
        linkSync(process.execPath, kubelet);
      } catch {
        copyFileSync(process.execPath, kubelet); // another filesystem
      }
      writeFileSync(join(state, 'policy.yaml'), `criClients: [${JSON.stringify(kubelet)}]\nstateDir: ${JSON.stringify(state)}\n`);
      lab = await PodLab.open();
      cw = await CtrwatchProcess.start(['--state-dir', state, '--stats-interval-s', '1', '--policy', join(state, 'policy.yaml')]);
    });
    afterAll(async () => {
      await cw?.stop();
      await lab?.close(); // pods, images, containerd, cgroups, bridge: even when a test failed
      rmSync(state, { recursive: true, force: true });
    });

    const started = (id: string) =>
      cw.waitFor((e) => e.containerStarted?.container?.id === id, 15_000).then((e) => e.containerStarted.container);
    const detsAbout = (id: string, rule?: string) =>
      cw.events.filter((e) => e.detection?.container?.id === id && (!rule || e.detection.ruleId === rule)).map((e) => e.detection);
    const settle = () => new Promise((r) => setTimeout(r, 1000));
    /** Start rules' findings (T1610 for how the pod was made is about the sandbox, by design). */
    const startDetsAbout = (id: string) => detsAbout(id).filter((d) => d.ruleId !== 'deploy.pod-outside-kubelet');

    /** The pod's records: its sandbox marked, the workload carrying the pod. */
    async function expectPodRecords(pod: Pod, c: PodContainer, labels: Record<string, string>, annotations: Record<string, string>) {
      const sandbox = await started(pod.id);
      expect(sandbox.pod).toEqual({
        name: pod.spec.name,
        namespace: pod.spec.namespace,
        uid: pod.spec.uid,
        sandboxId: pod.id,
        sandbox: true,
        labels,
        annotations,
        labelsSource: 'containerd-store',
      });
      const k = await started(c.id);
      expect(k).toMatchObject({
        runtime: 'CONTAINERD',
        name: c.name,
        image: WORKLOAD_REF,
        podName: pod.spec.name,
        podNamespace: pod.spec.namespace,
      });
      expect(k.podUid).toBe(pod.spec.uid);
      expect(k.initPid).toBe(lab.initPid(c.id));
      expect(k.pod).toEqual({
        name: pod.spec.name,
        namespace: pod.spec.namespace,
        uid: pod.spec.uid,
        sandboxId: pod.id,
        containerName: c.name,
        labels,
        annotations,
        labelsSource: 'containerd-store',
      });
      return k;
    }

    it('a plain pod: every record carries the pod, the sandbox is marked and judged as no workload', async () => {
      const labels = { app: 'web', tier: 'front' };
      const annotations = { 'example.com/owner': 'team-a' };
      const pod = await lab.runPod({ name: 'web-5d9c7', namespace: 'shop', labels, annotations });
      const c = await lab.startContainer(pod, { name: 'app', command: ['/bin/sleep', '300'] });
      await expectPodRecords(pod, c, labels, annotations);
      expect(cw.events.find((e) => e.containerCreated?.container?.id === c.id)?.containerCreated.container.pod?.containerName).toBe('app');
      await settle();
      // The sandbox's own start is not a workload's: no start rule speaks of it.
      expect(startDetsAbout(pod.id)).toEqual([]);
      // A plain pod in its own namespaces: nothing of T1611 at start, no Job.
      for (const rule of [...T1611_START, 'orchestration.k8s-job']) expect(detsAbout(c.id, rule), rule).toEqual([]);
      // Its own network namespace: the bridge CNI gave it one, not the host's.
      expect((await started(c.id)).hostNamespaces ?? []).not.toContain('NET');

      // ctrwatch ps --pods: the pod with its sandbox first, then its container.
      const ps = await ctrwatch(['ps', '--pods', '--json']);
      expect(ps.code, ps.stderr).toBe(0);
      const groups = ps.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Ev);
      const g = groups.find((x) => x.sandboxId === pod.id);
      expect(g).toMatchObject({ namespace: 'shop', name: 'web-5d9c7', uid: pod.spec.uid, labels, annotations });
      expect(g!.containers.map((x: Ev) => [x.id, x.pod.sandbox ?? false, x.pod.containerName])).toEqual([
        [pod.id, true, undefined],
        [c.id, false, 'app'],
      ]);
      const table = await ctrwatch(['ps', '--pods']);
      expect(table.code, table.stderr).toBe(0);
      const rows = table.stdout.split('\n').filter((l) => l.includes('web-5d9c7'));
      expect(rows.map((r) => r.split(/\s{2,}/).slice(0, 4))).toEqual([
        ['shop', 'web-5d9c7', '-', 'sandbox'],
        ['shop', 'web-5d9c7', 'app', 'workload'],
      ]);
    });

    it('T1610: a pod made through the CRI by a process that is not the kubelet, and none for the kubelet', async () => {
      // This test process holds a CRI connection: it is the caller, and not the kubelet.
      const pod = await lab.runPod({ name: 'direct' });
      const d = await cw.detection('deploy.pod-outside-kubelet', (x) => x.container?.id === pod.id);
      expect(d).toMatchObject({ severity: 'HIGH', techniques: ['T1610'] });
      expect(d.attributes).toMatchObject({
        pod: 'default/direct',
        socket: lab.socket,
        clientPid: String(process.pid),
        clientInContainer: 'false',
      });
      expect(d.chain[0].pid).toBe(process.pid);
      expect(d.container.pod).toMatchObject({ name: 'direct', sandbox: true });

      // The kubelet (the exe the policy names) is the only client: no finding.
      lab.disconnect();
      try {
        const end = Date.now() + scaled(5_000);
        const connected = () => criClients(lab.socket, new Set(), undefined) ?? [];
        while (connected().length && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
        expect(connected(), 'clients still connected to the lab containerd').toEqual([]);
        const { config } = lab.sandboxConfig({ name: 'by-kubelet' });
        const script = join(__dirname, '../support/cri/run-pod-sandbox.js');
        const child = spawn(kubelet, [script, lab.socket, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (b: Buffer) => (out += b.toString()));
        child.stderr.on('data', (b: Buffer) => (err += b.toString()));
        const code = await new Promise((r) => child.once('exit', r));
        expect(code, err).toBe(0);
        const id = out.trim();
        expect(id).toMatch(/^[0-9a-f]{64}$/);
        expect((await started(id)).pod).toMatchObject({ name: 'by-kubelet', sandbox: true });
        await settle();
        expect(detsAbout(id, 'deploy.pod-outside-kubelet').map((x) => x.attributes)).toEqual([]);
      } finally {
        lab.reconnect();
      }
    });

    it("the kubelet's exec (ExecSync) is a containerExec into the container it entered", async () => {
      const pod = await lab.runPod({ name: 'exec-target' });
      const c = await lab.startContainer(pod, { name: 'shell', command: ['/bin/sleep', '300'] });
      await started(c.id);
      const r = await lab.cri.execSync(c.id, ['/bin/sh', '-c', 'echo from-exec; exit 3']);
      expect(r).toMatchObject({ stdout: 'from-exec\n', exitCode: 3 });
      const ex = (await cw.waitFor((e) => e.containerExec?.container?.id === c.id && e.containerExec.process?.argv?.[0] === '/bin/sh'))
        .containerExec;
      expect(ex.process.argv).toEqual(['/bin/sh', '-c', 'echo from-exec; exit 3']);
      expect(ex.container.pod).toMatchObject({ name: 'exec-target', containerName: 'shell', sandboxId: pod.id });
      // Entered by containerd's shim through runc exec, not started as a container of its own.
      // (runc exec, or the shim once runc exec has gone and the process was reparented to it)
      expect(ex.parent.argv.includes('exec') || /containerd-shim/.test(ex.parent.argv[0]), JSON.stringify(ex.parent.argv)).toBe(true);
      expect(
        cw.events.filter(
          (e) =>
            e.containerStarted &&
            e.containerStarted.container.id !== c.id &&
            e.containerStarted.container.pod?.sandboxId === pod.id &&
            !e.containerStarted.container.pod?.sandbox,
        ),
      ).toEqual([]);
    });

    it('T1611: a privileged pod in the host namespaces with /, /etc and containerd state mounted', async () => {
      const pod = await lab.runPod({ name: 'node-agent', hostNetwork: true, hostPid: true, hostIpc: true, privileged: true });
      const c = await lab.startContainer(pod, {
        name: 'agent',
        command: ['/bin/sleep', '300'],
        privileged: true,
        mounts: [
          { hostPath: '/', containerPath: '/host', readonly: true },
          { hostPath: '/etc', containerPath: '/host-etc', readonly: true },
          { hostPath: '/var/run/containerd', containerPath: '/run/containerd', readonly: true },
        ],
      });
      const k = await started(c.id);
      expect(k.pod).toMatchObject({ name: 'node-agent', containerName: 'agent', sandboxId: pod.id });
      expect(k.hostNamespaces).toEqual(expect.arrayContaining(['PID', 'NET', 'IPC']));
      const priv = await cw.detection('escape.privileged-container', (d) => d.container?.id === c.id);
      expect(priv).toMatchObject({ severity: 'HIGH', techniques: ['T1611'] });
      expect(priv.container.pod.name).toBe('node-agent');
      const ns = await cw.detection('escape.host-namespaces', (d) => d.container?.id === c.id);
      expect(ns.attributes.namespaces.split(',').sort()).toEqual(['IPC', 'NET', 'PID', 'UTS']); // a host-network pod has the host's name too
      expect(ns.severity).toBe('HIGH');
      await settle();
      const mounts = detsAbout(c.id, 'escape.sensitive-mount').map((d) => [d.attributes.source, d.attributes.destination, d.severity]);
      expect(mounts).toEqual(
        expect.arrayContaining([
          ['/', '/host', 'CRITICAL'],
          ['/etc', '/host-etc', 'HIGH'],
        ]),
      );
      // containerd resolves /var/run (a link to /run here) before it mounts: the source is the real directory.
      expect(mounts.find((m) => m[1] === '/run/containerd')).toEqual([
        expect.stringMatching(/^(\/var)?\/run\/containerd$/),
        '/run/containerd',
        'HIGH',
      ]);
      // The sandbox shares those namespaces too, and is not reported: the workload is.
      expect(startDetsAbout(pod.id)).toEqual([]);
    });

    it('T1053.007: pods of a Job and of a CronJob, from the Job controller labels', async () => {
      const jobUid = '9d3b0a4e-3c1f-4d8e-9a55-1f2b3c4d5e6f';
      const job = await lab.runPod({
        name: 'migrate-x7k2p',
        labels: {
          'batch.kubernetes.io/job-name': 'migrate',
          'job-name': 'migrate',
          'batch.kubernetes.io/controller-uid': jobUid,
          'controller-uid': jobUid,
        },
      });
      const jc = await lab.startContainer(job, { name: 'migrate', command: ['/bin/sleep', '300'] });
      const jd = await cw.detection('orchestration.k8s-job', (d) => d.container?.id === jc.id);
      expect(jd).toMatchObject({
        severity: 'LOW',
        techniques: ['T1053.007'],
        attributes: { job: 'migrate', controllerUid: jobUid, pod: 'migrate-x7k2p' },
      });
      expect(jd.message).toMatch(/Kubernetes Job migrate$/);

      const cron = await lab.runPod({
        name: 'backup-28977480-q2w9z',
        labels: { 'batch.kubernetes.io/job-name': 'backup-28977480', 'batch.kubernetes.io/controller-uid': 'c-1' },
      });
      const cc = await lab.startContainer(cron, { name: 'backup', command: ['/bin/sleep', '300'] });
      const cd = await cw.detection('orchestration.k8s-job', (d) => d.container?.id === cc.id);
      expect(cd.attributes).toMatchObject({ cronJob: 'backup', job: 'backup-28977480' });
      await settle();
      expect(startDetsAbout(job.id)).toEqual([]);
      expect(startDetsAbout(cron.id)).toEqual([]);
    });

    it('a sandbox with hostile annotations: capped, replaced, counted, and the container still reported', async () => {
      const annotations: Record<string, string> = {
        markup: '<script>alert(1)</script>\u001b[31mred',
        nested: '['.repeat(5000) + ']'.repeat(5000),
        huge: 'x'.repeat(200_000),
        broken: 'ok\uD800end', // a lone surrogate: not UTF-8 once encoded
      };
      for (let i = 0; i < 400; i++) annotations[`z-bulk-${String(i).padStart(3, '0')}`] = String(i); // after the others: the store keeps keys sorted
      const pod = await lab.runPod({ name: 'hostile', annotations, labels: { ['k'.repeat(400)]: 'long key', fine: 'yes' } });
      const c = await lab.startContainer(pod, { name: 'app', command: ['/bin/sleep', '300'] });
      const k = await started(c.id);
      const a = k.pod.annotations as Record<string, string>;
      expect(Object.keys(a).length).toBe(256);
      expect(a.markup).toBe('<script>alert(1)</script>\uFFFD[31mred');
      expect(a.huge).toBe('x'.repeat(4096));
      expect(a.nested).toBe('['.repeat(4096));
      expect(a.broken).toMatch(/^ok\uFFFD+end$/);
      expect(k.pod.labels).toEqual({ fine: 'yes' });
      expect(k.pod.name).toBe('hostile');
      // Counted: sensorStats says more containers came out incomplete than before.
      const stats = await cw.waitFor((e) => Number(e.sensorStats?.enrichFailures ?? 0) > 0, 5_000);
      expect(Number(stats.sensorStats.enrichFailures)).toBeGreaterThan(0);
      expect(cw.stderr.some((l) => l.includes(c.id) && /pod labels trimmed: annotations, annotations\.replaced, labels/.test(l))).toBe(
        true,
      );
    });

    it('a runtime that does not answer: pod metadata still comes from its files', async () => {
      const pod = await lab.runPod({ name: 'frozen', labels: { app: 'frozen' } });
      const c = await lab.startContainer(pod, { name: 'app', command: ['/bin/sleep', '300'] });
      await started(c.id);
      const daemon = processRef(lab.daemonPid)!;
      signal(daemon, 'SIGSTOP'); // containerd answers nothing now, on any socket
      try {
        // Every thread stopped (the signal reaches them one by one).
        const stopped = () =>
          readdirSync(`/proc/${daemon.pid}/task`).every((t) => / T /.test(readFileSync(`/proc/${daemon.pid}/task/${t}/stat`, 'utf8')));
        const end = Date.now() + scaled(5_000);
        while (!stopped() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        expect(stopped()).toBe(true);
        expect(
          await lab.cri.call('Version', { version: 'v1' }, 2_000).then(
            () => 'answered',
            () => 'no answer',
          ),
        ).toBe('no answer');
        const ps = await ctrwatch(['ps', '--pods', '--json']);
        expect(ps.code, ps.stderr).toBe(0);
        const g = ps.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Ev)
          .find((x) => x.sandboxId === pod.id);
        expect(g).toMatchObject({ name: 'frozen', labels: { app: 'frozen' } });
        expect(g!.containers.find((x: Ev) => x.id === c.id).pod).toMatchObject({ containerName: 'app', labelsSource: 'containerd-store' });
      } finally {
        signal(daemon, 'SIGCONT');
      }
    });
  },
);
