import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BoltFile } from '../../src/meta/bolt';
import { criFromAnnotations } from '../../src/meta/oci-config';
import {
  cleanStringMap,
  containerdNamespaceOfBundle,
  parseSandboxExtension,
  podIdentity,
  PodMetaError,
  readContainerdSandbox,
  SANDBOX_EXTENSION,
} from '../../src/meta/pod';
import { ContainerdPodStore, type StoreScanIo } from '../../src/container/pod-store';
import { boltFile } from '../support/bolt-writer';

const SB = 'a'.repeat(64);
const CT = 'b'.repeat(64);
const cri = (type: string, sandboxId = SB) =>
  criFromAnnotations({
    'io.kubernetes.cri.container-type': type,
    'io.kubernetes.cri.sandbox-id': sandboxId,
    'io.kubernetes.cri.sandbox-name': 'web',
    'io.kubernetes.cri.sandbox-namespace': 'shop',
    'io.kubernetes.cri.sandbox-uid': 'u-1',
    ...(type === 'container' ? { 'io.kubernetes.cri.container-name': 'app' } : {}),
  });

/** containerd's sandbox extension: an Any {type_url, value = JSON}. */
function anyOf(json: string | Buffer, typeUrl = 'github.com/containerd/cri/pkg/store/sandbox/Metadata'): Buffer {
  const field = (n: number, b: Buffer) => {
    const len: number[] = [];
    for (let v = b.length; ; v >>>= 7) {
      if (v < 0x80) {
        len.push(v);
        break;
      }
      len.push((v & 0x7f) | 0x80);
    }
    return Buffer.concat([Buffer.from([(n << 3) | 2, ...len]), b]);
  };
  return Buffer.concat([field(1, Buffer.from(typeUrl)), field(2, Buffer.isBuffer(json) ? json : Buffer.from(json))]);
}
const extension = (config: unknown) => anyOf(JSON.stringify({ Version: 'v1', Metadata: { ID: SB, Config: config } }));

const dir = mkdtempSync(join(tmpdir(), 'cw-pod-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function db(tree: Parameters<typeof boltFile>[0]): BoltFile {
  const p = join(dir, `meta-${Math.random().toString(36).slice(2)}.db`);
  writeFileSync(p, boltFile(tree));
  return new BoltFile(p);
}

describe('pod identity from CRI annotations', () => {
  it('marks the sandbox only when the type says so and the sandbox id is its own', () => {
    expect(podIdentity(cri('sandbox'), SB)).toEqual({ name: 'web', namespace: 'shop', uid: 'u-1', sandboxId: SB, sandbox: true });
    expect(podIdentity(cri('container'), CT)).toEqual({
      name: 'web',
      namespace: 'shop',
      uid: 'u-1',
      sandboxId: SB,
      containerName: 'app',
      sandbox: false,
    });
    // "sandbox" claimed by a container of someone else's sandbox id: not a sandbox.
    expect(podIdentity(cri('sandbox'), CT)?.sandbox).toBe(false);
    expect(podIdentity(criFromAnnotations({ 'org.opencontainers.image.title': 'x' }), CT)).toBeUndefined();
  });

  it('knows containerd bundles and their namespace', () => {
    expect(containerdNamespaceOfBundle(`/run/containerd/io.containerd.runtime.v2.task/k8s.io/${SB}`)).toBe('k8s.io');
    expect(containerdNamespaceOfBundle(`/var/lib/docker/containers/${SB}`)).toBeUndefined();
  });
});

describe('pod labels and annotations', () => {
  it('cleans string maps: counts, lengths, invalid UTF-8 and control characters, non-strings', () => {
    const t = new Set<string>();
    const m = cleanStringMap(
      [
        ['ok', 'v'],
        ['bad', Buffer.from([0x61, 0xff, 0x62]).toString('utf8')],
        ['esc', 'a\u001b[2Jb'],
        ['n', 5],
        ['long', 'x'.repeat(5000)],
        ['k'.repeat(400), 'v'],
      ],
      'labels',
      t,
    );
    expect(m).toEqual({ ok: 'v', bad: 'a\uFFFDb', esc: 'a\uFFFD[2Jb', long: 'x'.repeat(4096) });
    expect([...t].sort()).toEqual(['labels', 'labels.not-a-string', 'labels.replaced']);
    const many = new Set<string>();
    expect(
      Object.keys(
        cleanStringMap(
          Array.from({ length: 300 }, (_, i) => [`k${i}`, 'v']),
          'annotations',
          many,
        ),
      ),
    ).toHaveLength(256);
    expect([...many]).toEqual(['annotations']);
  });

  it('reads the sandbox extension (an Any holding JSON) and names what is wrong with it', () => {
    expect(parseSandboxExtension(extension({ labels: { a: '1' }, annotations: { b: '2' } }))).toEqual({
      labels: new Map([['a', '1']]),
      annotations: new Map([['b', '2']]),
    });
    expect(parseSandboxExtension(extension({})).labels.size).toBe(0);
    expect(() => parseSandboxExtension(Buffer.from([0x0a, 0x05, 0x61]))).toThrow(PodMetaError);
    expect(() => parseSandboxExtension(anyOf('not json'))).toThrow(/not JSON/);
    expect(() => parseSandboxExtension(anyOf('['.repeat(100) + ']'.repeat(100)))).toThrow(/deeper than 32/);
    expect(() => parseSandboxExtension(extension({ labels: ['a'] }))).toThrow(/labels is not an object/);
    expect(() => parseSandboxExtension(anyOf('{"Metadata":{}}'))).toThrow(/no Metadata.Config/);
    expect(() => parseSandboxExtension(anyOf('x'.repeat(1024 * 1024 + 1)))).toThrow(/bytes/);
    // A string that looks like nesting is data, not structure.
    const nested = '['.repeat(5000);
    expect(parseSandboxExtension(extension({ annotations: { nested } })).annotations.get('nested')).toBe(nested);
  });

  it('reads a sandbox from containerd’s store: the extension first, else the labels bucket', () => {
    const store = db({
      v1: {
        'k8s.io': {
          containers: {
            [SB]: {
              labels: { app: 'web', 'io.cri-containerd.kind': 'sandbox', 'from-image': 'x' },
              extensions: { [SANDBOX_EXTENSION]: extension({ labels: { app: 'web' }, annotations: { note: '<b>hi</b>' } }) },
            },
            [CT]: { labels: { app: 'old', 'io.cri-containerd.kind': 'sandbox' } },
          },
        },
      },
    });
    expect(readContainerdSandbox(store, 'k8s.io', SB)).toEqual({ labels: { app: 'web' }, annotations: { note: '<b>hi</b>' }, trimmed: [] });
    expect(readContainerdSandbox(store, 'k8s.io', CT)).toEqual({ labels: { app: 'old' }, annotations: {}, trimmed: [] });
    expect(readContainerdSandbox(store, 'k8s.io', 'c'.repeat(64))).toBeUndefined();
    expect(readContainerdSandbox(store, 'moby', SB)).toBeUndefined();
    store.close();
  });
});

describe('containerd stores found through the daemons that hold them open', () => {
  it('scans host containerds only, caches sandboxes, counts failures', () => {
    const good = join(dir, 'good.db');
    writeFileSync(
      good,
      boltFile({ v1: { 'k8s.io': { containers: { [SB]: { extensions: { [SANDBOX_EXTENSION]: extension({ labels: { a: '1' } }) } } } } } }),
    );
    const bad = join(dir, 'bad.db');
    writeFileSync(bad, 'garbage'.repeat(100));
    const procs: Record<number, { comm: string; mnt: string; fds: [string, string][] }> = {
      10: { comm: 'containerd', mnt: 'mnt:[1]', fds: [['3', '/x/io.containerd.metadata.v1.bolt/meta.db']] },
      11: { comm: 'containerd', mnt: 'mnt:[2]', fds: [['3', '/evil/io.containerd.metadata.v1.bolt/meta.db']] },
      12: { comm: 'containerd', mnt: 'mnt:[1]', fds: [['7', '/y/io.containerd.metadata.v1.bolt/meta.db']] },
      13: { comm: 'sleep', mnt: 'mnt:[1]', fds: [['3', '/z/io.containerd.metadata.v1.bolt/meta.db']] },
    };
    let scans = 0;
    const io: StoreScanIo = {
      pids: () => (scans++, Object.keys(procs).map(Number)),
      comm: (p) => procs[p]?.comm,
      mntNs: (p) => procs[p]?.mnt,
      fds: (p) => procs[p]?.fds ?? [],
    };
    let now = 0;
    const store = new ContainerdPodStore(io, 'mnt:[1]', () => now);
    expect(store.scan()).toEqual(['/proc/10/fd/3', '/proc/12/fd/7']);
    // The store paths are /proc links; point them at the test files through a subclass-free trick: a fake scan result.
    (store as unknown as { stores: string[] }).stores = [bad, good];
    const problems: string[] = [];
    expect(store.sandbox('k8s.io', SB, problems)).toEqual({ labels: { a: '1' }, annotations: {}, trimmed: [] });
    expect(problems).toEqual([]); // the bad store does not matter once the good one had it
    (store as unknown as { stores: string[] }).stores = [];
    expect(store.sandbox('k8s.io', SB, problems)?.labels).toEqual({ a: '1' }); // cached
    now = 5000;
    const miss: string[] = [];
    expect(store.sandbox('k8s.io', 'd'.repeat(64), miss)).toBeUndefined();
    expect(store.failures).toBe(1);
    // It rescanned (a second since the last scan) and says why each store failed.
    expect(scans).toBe(2);
    expect(miss).toEqual(['/proc/10/fd/3: bolt: cannot open (ENOENT)', '/proc/12/fd/7: bolt: cannot open (ENOENT)']);
    for (const p of [10, 12]) delete procs[p];
    const none: string[] = [];
    now = 10_000;
    expect(store.sandbox('k8s.io', 'e'.repeat(64), none)).toBeUndefined();
    expect(none).toEqual([`pod sandbox ${'e'.repeat(12)} not found in any containerd metadata store (0 open)`]);
    expect(store.failures).toBe(2);
  });

  it("reads no process the sensor knows to be in a container's mount namespace", () => {
    const read: number[] = [];
    const io: StoreScanIo = {
      pids: () => [10, 20, 30],
      comm: (p) => (read.push(p), 'containerd'),
      mntNs: () => 'mnt:[1]',
      fds: (p) => [['3', `/${p}/io.containerd.metadata.v1.bolt/meta.db`]],
    };
    const store = new ContainerdPodStore(
      io,
      'mnt:[1]',
      () => 0,
      1000,
      (pid) => pid === 20,
    );
    expect(store.scan()).toEqual(['/proc/10/fd/3', '/proc/30/fd/3']);
    expect(read).toEqual([10, 30]);
  });
});
