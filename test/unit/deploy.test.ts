import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { main } from '../../src/cli';
import { parsePolicy } from '../../src/detect/policy';

/**
 * The deployment files are checked, not run: the DaemonSet against the
 * Kubernetes API schema (no cluster runs here), and the sensor's own command
 * line in both files against `ctrwatch run --check`.
 */
const ROOT = join(__dirname, '../..');
const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy/kubernetes/ctrwatch.yaml'), 'utf8')).map((d) => d.toJS());
const byKind = (k: string) => docs.find((d) => d.kind === k);

async function check(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    const code = await main([...args, '--check', '--log-level', 'silent']);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('deployment files', () => {
  let dir: string | undefined;
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('the Kubernetes manifest validates against the API schema', () => {
    expect(docs.map((d) => d.kind)).toEqual(['Namespace', 'ConfigMap', 'DaemonSet']);
    expect(() => new Namespace(byKind('Namespace')).validate()).not.toThrow();
    expect(() => new ConfigMap(byKind('ConfigMap')).validate()).not.toThrow();
    expect(() => new DaemonSet(byKind('DaemonSet')).validate()).not.toThrow();
    // and the validator does catch a broken one
    const broken = structuredClone(byKind('DaemonSet'));
    broken.spec.template.spec.hostPID = 'yes';
    expect(() => new DaemonSet(broken).validate()).toThrow(/hostPID must be boolean/);
  });

  it('the DaemonSet runs privileged in the host pid namespace with every volume it mounts', () => {
    const spec = byKind('DaemonSet').spec.template.spec;
    expect(spec.hostPID).toBe(true);
    // The runtime socket's clients are asked of the kernel in the host's network namespace (T1610).
    expect(spec.hostNetwork).toBe(true);
    expect(spec.dnsPolicy).toBe('ClusterFirstWithHostNet');
    const c = spec.containers[0];
    expect(c.securityContext.privileged).toBe(true);
    const vols = new Set(spec.volumes.map((v: { name: string }) => v.name));
    for (const m of c.volumeMounts) expect(vols, m.name).toContain(m.name);
    const paths = spec.volumes.filter((v: any) => v.hostPath).map((v: any) => v.hostPath.path);
    for (const p of ['/sys/kernel/btf', '/sys/fs/cgroup', '/run/containerd', '/var/lib/docker', '/var/lib/containers'])
      expect(paths).toContain(p);
    // Pods' service-account volumes are mounted by the kubelet later: they must propagate in.
    expect(paths).toContain('/var/lib/kubelet/pods');
    expect(c.volumeMounts.find((m: any) => m.mountPath === '/var/lib/kubelet/pods')).toMatchObject({
      readOnly: true,
      mountPropagation: 'HostToContainer',
    });
    // runtime files are mounted where the runtimes name them
    for (const m of c.volumeMounts) {
      const v = spec.volumes.find((x: any) => x.name === m.name);
      if (v.hostPath) expect(m.mountPath).toBe(v.hostPath.path);
    }
  });

  it("the ConfigMap's policy is valid and the container's command line passes ctrwatch run --check", async () => {
    const policy = byKind('ConfigMap').data['policy.yaml'];
    expect(() => parsePolicy(policy)).not.toThrow();
    dir = mkdtempSync(join(tmpdir(), 'cw-deploy-'));
    writeFileSync(join(dir, 'policy.yaml'), policy);
    const c = byKind('DaemonSet').spec.template.spec.containers[0];
    // the image `make package` builds: its tag, and the path its .deb installs the sensor at
    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
    expect(c.image).toBe(`ctrwatch:${version}`);
    expect(c.command).toEqual(['/usr/bin/ctrwatch']);
    const args = c.args.map((a: string) => a.replace('/etc/ctrwatch', dir!));
    expect(args[0]).toBe('run');
    const r = await check(args);
    expect(r, r.err).toMatchObject({ code: 0, out: 'configuration ok\n' });
  });

  it("the systemd unit's ExecStart passes ctrwatch run --check", async () => {
    const unit = readFileSync(join(ROOT, 'deploy/systemd/ctrwatch.service'), 'utf8');
    const exec = /^ExecStart=(.*)$/m.exec(unit)![1].split(/\s+/);
    expect(exec[0]).toBe('/opt/ctrwatch/bin/ctrwatch');
    dir = mkdtempSync(join(tmpdir(), 'cw-deploy-'));
    writeFileSync(join(dir, 'policy.yaml'), 'minSeverity: LOW\n');
    const r = await check(exec.slice(1).map((a) => a.replace('/etc/ctrwatch', dir!)));
    expect(r, r.err).toMatchObject({ code: 0, out: 'configuration ok\n' });
    const bad = await check(['run', '--ring-mb=3']);
    expect(bad.code).toBe(2);
  });
});
