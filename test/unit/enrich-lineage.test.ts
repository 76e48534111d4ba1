import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { CgroupRegistry } from '../../src/container/cgroups';
import { DUPLICATE_ID_LABEL, Enricher, OUTER_LABEL } from '../../src/container/enrich';
import type { ContainerFacts } from '../../src/container/lifecycle';
import type { Namespaces } from '../../src/decode/records';
import { ProcessTable } from '../../src/process/table';

const HOST: Namespaces = { mnt: 1, pid: 2, net: 3, uts: 4, ipc: 5, cgroup: 6, user: 7, time: 8 };
const dir = mkdtempSync(join(tmpdir(), 'cw-enrich-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function bundle(name: string, image: string): string {
  const b = join(dir, name);
  mkdirSync(b, { recursive: true });
  writeFileSync(
    join(b, 'config.json'),
    JSON.stringify({
      ociVersion: '1.0.2',
      process: { args: ['/bin/sh'], cwd: '/', user: { uid: 0, gid: 0 } },
      root: { path: 'rootfs' },
      annotations: { 'io.kubernetes.cri.image-name': image, [DUPLICATE_ID_LABEL]: 'forged' },
      linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }] },
    }),
  );
  return b;
}

let keys = 100;
function facts(o: Partial<ContainerFacts>): ContainerFacts {
  const key = ++keys;
  return {
    key,
    status: 'started',
    initTgid: 5000 + key,
    initStartNs: 1n,
    ns: { ...HOST, mnt: key },
    cgroupId: 0n,
    rootChange: 'pivot_root',
    createdNs: 0n,
    existing: false,
    ...o,
  };
}

const enricher = () =>
  new Enricher(
    new ProcessTable(),
    HOST,
    new CgroupRegistry({ mode: 'v2', subsys: -1, hierarchy: 0, controller: 'cgroup2' }),
    pino({ level: 'silent' }),
  );
const rc = (id: string, b: string, pid = process.pid) => ({
  runtime: 'runc' as const,
  subcommand: 'create' as const,
  id,
  bundle: b,
  pid,
  systemdCgroup: false,
});

describe('container ids and nested containers', () => {
  it('no id is held by two live containers: the second gets a distinct, stable id and says so', () => {
    const e = enricher();
    const a = facts({ runtimeCall: rc('web', bundle('a', 'img-a')) });
    const b = facts({ runtimeCall: rc('web', bundle('b', 'img-b')) });
    expect(e.enrich(a).container.id).toBe('web');
    const mb = e.enrich(b);
    expect(mb.container.id).toBe(`web~${b.key}-${b.initTgid}`);
    expect(mb.container.labels?.[DUPLICATE_ID_LABEL]).toBe('web');
    expect(mb.problems.join()).toContain('id web is held by another live container');
    // A container's own annotations cannot say it.
    expect(e.enrich(a).container.labels?.[DUPLICATE_ID_LABEL]).toBeUndefined();
    a.status = 'exited';
    const c = facts({ runtimeCall: rc('web', bundle('c', 'img-c')) });
    expect(e.enrich(c).container.id).toBe('web');
  });

  it("a nested runtime's bundle is read under its own working directory and root, its id under the outer one's", async () => {
    const e = enricher();
    const outer = facts({ runtimeCall: rc('victim', bundle('victim', 'victim-image')) });
    expect(e.enrich(outer).container).toMatchObject({ id: 'victim', image: 'victim-image' });
    // The nested runtime runs in `cwd`, where its own bundle is; it names the victim's id.
    const cwd = join(dir, 'inner');
    bundle('inner/own', 'own-image');
    const child = spawn('/bin/sleep', ['30'], { cwd, stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      const nested = facts({ outer, runtimeCall: rc('victim', 'own', child.pid!) });
      const m = e.enrich(nested);
      expect(m.container.id).toBe('victim/victim');
      expect(m.container.image).toBe('own-image');
      expect(m.container.labels?.[OUTER_LABEL]).toBe('victim');
      expect(m.container.privileged).toBeUndefined();
      // A link anywhere below the process's root is refused, never followed.
      symlinkSync(join(dir, 'victim'), join(cwd, 'link'));
      const viaLink = e.enrich(facts({ outer, runtimeCall: rc('x', 'link', child.pid!) }));
      expect(viaLink.container.image).toBeUndefined();
      expect(viaLink.problems.join()).toMatch(/symbolic link/);
    } finally {
      child.kill();
    }
  });
});
