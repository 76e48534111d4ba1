import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { TokenVolumes } from '../../src/container/token-volumes';
import { ObjFlag } from '../../src/decode/layout';
import { decodeBatch } from '../../src/decode/decode';
import type { ConnectRecord, ObjectRecord } from '../../src/decode/records';
import { apiText, ipBytes, kernelApiKeys, parseApiAddress } from '../../src/detect/api-address';
import { TokenCorrelator, TokenRule, tokenSeverity, type TokenRead } from '../../src/detect/token-rules';
import { OciConfigError, parseOciConfig } from '../../src/meta/oci-config';
import { serviceAccountMount, serviceAccountVolume } from '../../src/meta/service-account';
import type { Proc } from '../../src/process/table';
import type { ContainerInput } from '../../src/proto/schema';
import { objectRecord, task } from '../support/records';

const S = 1_000_000_000n;
const MIN = 60n * S;
const proc = (tgid: number, comm = 'sh', startNs = BigInt(tgid) * 1000n) => ({ tgid, startNs, comm }) as Proc;

describe('the token read → API connect correlation (pure)', () => {
  const read = (reader: Proc, at: bigint): TokenRead => ({ reader, file: '..data/token', dev: 7, at });

  it('pairs a connect with the last read of its container within the window, once per connecting process', () => {
    const k = new TokenCorrelator<string>();
    const cat = proc(10, 'cat');
    const nc = proc(11, 'nc');
    expect(k.connect('a', nc, 5n * S)).toBeUndefined(); // no read yet
    k.read('a', read(cat, 10n * S));
    expect(k.connect('a', nc, 9n * S)).toBeUndefined(); // before the read
    expect(k.connect('b', nc, 11n * S)).toBeUndefined(); // another container
    expect(k.connect('a', nc, 11n * S)?.reader).toBe(cat);
    expect(k.connect('a', nc, 12n * S)).toBeUndefined(); // the same process again: quiet
    expect(k.connect('a', proc(11, 'nc', 999n), 12n * S)?.reader).toBe(cat); // pid reused: another process
    expect(k.connect('a', proc(12), 10n * S + 5n * MIN)?.reader).toBe(cat); // the window's edge
    expect(k.connect('a', proc(13), 10n * S + 5n * MIN + 1n)).toBeUndefined(); // past it
    k.forget('a');
    expect(k.size).toBe(0);
  });

  it('the same process pairs again after the quiet time', () => {
    const k = new TokenCorrelator<string>(5n * MIN, 10, 60n * MIN);
    const p = proc(10);
    k.read('a', read(p, 0n));
    expect(k.connect('a', p, S)).toBeDefined();
    k.read('a', read(p, 61n * MIN));
    expect(k.connect('a', p, 61n * MIN + S)).toBeDefined();
  });

  it('memory is bounded: the oldest container read and the oldest reported process go first', () => {
    const k = new TokenCorrelator<number>(5n * MIN, 3, 60n * MIN, 2);
    for (let i = 0; i < 5; i++) k.read(i, read(proc(100 + i), S));
    expect(k.size).toBe(3);
    expect(k.connect(0, proc(1), 2n * S)).toBeUndefined();
    expect(k.connect(1, proc(1), 2n * S)).toBeUndefined();
    expect(k.connect(4, proc(1), 2n * S)).toBeDefined();
    expect(k.connect(3, proc(2), 2n * S)).toBeDefined();
    expect(k.connect(2, proc(3), 2n * S)).toBeDefined();
    // proc(1) was the oldest of 3 reported with room for 2: forgotten, so it pairs again.
    expect(k.connect(4, proc(1), 3n * S)).toBeDefined();
  });

  it('severity: MEDIUM; LOW for the entry process doing both itself; HIGH for another pod token', () => {
    const entry = proc(1, 'app');
    const r = read(entry, 0n);
    expect(tokenSeverity(r, entry, entry, true)).toBe('LOW');
    expect(tokenSeverity(r, proc(2), entry, true)).toBe('MEDIUM');
    expect(tokenSeverity(read(proc(3), 0n), proc(3), entry, true)).toBe('MEDIUM');
    expect(tokenSeverity(r, entry, entry, undefined)).toBe('LOW');
    expect(tokenSeverity(r, entry, entry, false)).toBe('HIGH');
  });
});

describe('the token rule on decoded records', () => {
  type C = { id: string; pod: string; entry?: Proc };
  const web: C = { id: 'c1', pod: 'shop/web', entry: proc(1, 'app') };
  const other: C = { id: 'c2', pod: 'kube-system/ctl' };
  const api = parseApiAddress('10.96.0.1:443');
  const rule = () =>
    new TokenRule<C>({
      apiServers: (c) => (c === web ? [{ addr: api, text: apiText(api), source: 'env' }] : []),
      owner: (dev) =>
        dev === 0x2a
          ? { pod: 'shop/web', destination: '/var/run/secrets/kubernetes.io/serviceaccount', c: web }
          : dev === 0x2b
            ? { pod: 'kube-system/ctl', destination: '/var/run/secrets/kubernetes.io/serviceaccount', c: other }
            : undefined,
      name: (c) => c.id,
      pod: (c) => c.pod,
      entry: (c) => c.entry,
    });
  const tokenRead = (over: Partial<ObjectRecord> = {}): ObjectRecord => {
    const [r] = decodeBatch(
      objectRecord(
        {
          syscall: 'openat',
          ret: 3,
          dev: 0x2a,
          magic: 0x01021994,
          fstype: 'tmpfs',
          fMode: 0x1d,
          flags: ObjFlag.FILE | ObjFlag.TOKEN,
          chain: ['..2026_11_30', 'token'],
        },
        task({ tgid: 10, comm: 'cat' }),
      ),
    ).records as ObjectRecord[];
    return { ...r, ktime: 10n * S, ...over };
  };
  const conn = (addr: string, port: number, ktime: bigint, over: Partial<ConnectRecord> = {}): ConnectRecord => ({
    kind: 'connect',
    ktime,
    cpu: 0,
    task: task({ tgid: 11, comm: 'nc' }),
    family: addr.includes(':') ? 'inet6' : 'inet',
    ret: 0,
    fd: 3,
    peerDev: 0,
    peerIno: 0n,
    peerPath: '',
    port,
    addr,
    ...over,
  });

  it('the kernel flag survives the record layout', () => {
    expect(tokenRead().flags & ObjFlag.TOKEN).toBe(ObjFlag.TOKEN);
  });

  it('a read, then a connect to the API server (IPv4 or IPv4-mapped), from the same container: one finding with both processes', () => {
    const t = rule();
    expect(t.onObject(tokenRead(), proc(10, 'cat'), () => web)).toEqual([]); // alone: nothing
    const [f, ...more] = t.onConnect(conn('::ffff:a60:1', 443, 12n * S), proc(11, 'nc'), () => web);
    expect(more).toEqual([]);
    expect(f).toMatchObject({
      ruleId: 'discovery.service-account-token',
      severity: 'MEDIUM',
      container: web,
      attributes: {
        pod: 'shop/web',
        apiServer: '10.96.0.1:443',
        apiServerFrom: 'env',
        token: '/var/run/secrets/kubernetes.io/serviceaccount/..2026_11_30/token',
        tokenPod: 'shop/web',
        tokenReader: 'cat',
        tokenReaderPid: '10',
        readToConnectMs: '2000',
        result: '0',
      },
    });
    expect(f.actor?.tgid).toBe(11);
    expect(f.message).toBe(
      'a process of container c1 (pod shop/web) connected to the Kubernetes API server 10.96.0.1:443 2.0 s after cat (pid 10) read its service-account token /var/run/secrets/kubernetes.io/serviceaccount/..2026_11_30/token',
    );
  });

  it('no finding: a connect elsewhere, a read without the kernel flag, a failed open, a unix connect, a container without a read', () => {
    const t = rule();
    t.onObject(tokenRead({ flags: ObjFlag.FILE }), proc(10), () => web);
    expect(t.onConnect(conn('10.96.0.1', 443, 11n * S), proc(11), () => web)).toEqual([]);
    t.onObject(tokenRead({ ret: -13 }), proc(10), () => web);
    expect(t.onConnect(conn('10.96.0.1', 443, 11n * S), proc(12), () => web)).toEqual([]);
    t.onObject(tokenRead(), proc(10), () => web);
    expect(t.onConnect(conn('10.96.0.2', 443, 11n * S), proc(13), () => web)).toEqual([]);
    expect(t.onConnect(conn('10.96.0.1', 6443, 11n * S), proc(14), () => web)).toEqual([]);
    expect(t.onConnect({ ...conn('', 0, 11n * S), family: 'unix' }, proc(15), () => web)).toEqual([]);
    expect(t.onConnect(conn('10.96.0.1', 443, 11n * S), proc(16), () => undefined)).toEqual([]);
    // other has no API server of its own and no read.
    expect(t.onConnect(conn('10.96.0.1', 443, 11n * S), proc(17), () => other)).toEqual([]);
    // And the positive control after all that.
    expect(t.onConnect(conn('10.96.0.1', 443, 11n * S), proc(18), () => web)).toHaveLength(1);
  });

  it("another pod's token (a host mount of the kubelet's dir) is HIGH and named; the entry process doing both is LOW", () => {
    const t = rule();
    t.onObject(tokenRead({ dev: 0x2b }), proc(10, 'cat'), () => web);
    const [f] = t.onConnect(conn('10.96.0.1', 443, 11n * S, { ret: -111 }), proc(11), () => web);
    expect(f.severity).toBe('HIGH');
    expect(f.attributes).toMatchObject({ tokenPod: 'kube-system/ctl', result: '-111' });
    expect(f.message).toContain(
      "tried to connect to the Kubernetes API server 10.96.0.1:443 1.0 s after cat (pid 10) read pod kube-system/ctl's service-account token",
    );
    const u = rule();
    u.onObject(tokenRead(), web.entry!, () => web);
    expect(u.onConnect(conn('10.96.0.1', 443, 11n * S), web.entry!, () => web)[0]).toMatchObject({ severity: 'LOW' });
  });
});

describe('API server addresses', () => {
  it('parses and folds IPv4-mapped IPv6 onto IPv4', () => {
    expect(ipBytes('10.96.0.1')?.toString('hex')).toBe('0a600001');
    expect(ipBytes('::ffff:10.96.0.1')?.toString('hex')).toBe('0a600001');
    expect(ipBytes('::ffff:a60:1')?.toString('hex')).toBe('0a600001');
    expect(ipBytes('fd00::1')?.toString('hex')).toBe('fd000000000000000000000000000001');
    expect(ipBytes('1:2:3:4:5:6:7:8')?.toString('hex')).toBe('00010002000300040005000600070008');
    expect(ipBytes('kubernetes')).toBeUndefined();
    expect(apiText(parseApiAddress('[fd00::1]:6443'))).toBe('[fd00::1]:6443');
    // An IPv4 server is two kernel keys: AF_INET, and AF_INET6 mapped.
    expect(kernelApiKeys(parseApiAddress('10.96.0.1:443')).map((k) => [k.family, k.addr.toString('hex'), k.port])).toEqual([
      [2, '0a600001', 443],
      [10, '00000000000000000000ffff0a600001', 443],
    ]);
  });
});

describe("a pod's service-account volume and API service, from its config", () => {
  const config = (env: unknown) => Buffer.from(JSON.stringify({ ociVersion: '1.0.2', process: { args: ['sh'], env } }));
  const opts = { isHostNamespace: () => false };

  it('reads KUBERNETES_SERVICE_HOST/PORT from process.env, last one winning; ignores what is not an address and port', () => {
    const env = [
      'PATH=/bin',
      'KUBERNETES_SERVICE_HOST=10.0.0.9',
      'KUBERNETES_SERVICE_HOST=10.96.0.1',
      'KUBERNETES_SERVICE_PORT=443',
      `BIG=${'x'.repeat(10_000)}`,
    ];
    const s = parseOciConfig(config(env), opts);
    expect(s.kubernetesService).toEqual({ host: '10.96.0.1', port: 443 });
    expect(s.trimmed).toEqual([]); // the rest of the environment is not kept, so not trimmed
    expect(parseOciConfig(config(['KUBERNETES_SERVICE_HOST=10.96.0.1']), opts).kubernetesService).toBeUndefined();
    expect(
      parseOciConfig(config(['KUBERNETES_SERVICE_HOST=10.96.0.1', 'KUBERNETES_SERVICE_PORT=https']), opts).kubernetesService,
    ).toBeUndefined();
    expect(
      parseOciConfig(config(['KUBERNETES_SERVICE_HOST=10.96.0.1', 'KUBERNETES_SERVICE_PORT=70000']), opts).kubernetesService,
    ).toBeUndefined();
    expect(() => parseOciConfig(config('HOME=/'), opts)).toThrow(new OciConfigError('wrong-type', 'process.env', 'expected an array'));
    expect(() => parseOciConfig(config(['A=1', 2]), opts)).toThrow(/process\.env\[1\]: expected a string, got number/);
  });

  it('finds the volume by its container path and takes its superblock only when it is a mount of its own', () => {
    const m = serviceAccountMount([
      { source: '/var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/x', destination: '/data' },
      {
        source: '/var/lib/kubelet/pods/u/volumes/kubernetes.io~projected/kube-api-access-1',
        destination: '/var/run/secrets/kubernetes.io/serviceaccount/',
      },
    ]);
    expect(m).toEqual({
      source: '/var/lib/kubelet/pods/u/volumes/kubernetes.io~projected/kube-api-access-1',
      destination: '/var/run/secrets/kubernetes.io/serviceaccount',
    });
    expect(serviceAccountMount([{ source: 'relative', destination: '/var/run/secrets/kubernetes.io/serviceaccount' }])).toBeUndefined();
    // st_dev 0:61 (glibc encoding) is the kernel's 0 << 20 | 61; major 259 minor 3 is 259 << 20 | 3.
    expect(serviceAccountVolume(m!, () => ({ dev: 61n, ino: 1n, parentDev: 2049n })).dev).toBe(61);
    expect(serviceAccountVolume(m!, () => ({ dev: (259n << 8n) | 3n, ino: 1n, parentDev: 61n })).dev).toBe(((259 << 20) | 3) >>> 0);
    expect(() => serviceAccountVolume(m!, () => ({ dev: 2049n, ino: 5n, parentDev: 2049n }))).toThrow(
      'service-account volume /var/lib/kubelet/pods/u/volumes/kubernetes.io~projected/kube-api-access-1 is not a mount of its own (same device as its parent): reads of its token are not seen',
    );
  });

  it('keeps the kernel maps while a container of the pod lives: volumes by superblock, addresses from the policy and the pods', () => {
    const pushed: { devs: number[][]; apis: string[][] } = { devs: [], apis: [] };
    const v = new TokenVolumes<object>({
      port: {
        setTokenDevs: (d) => pushed.devs.push([...d].sort()),
        setApiServers: (l) => pushed.apis.push(l.map((a) => `${a.family}/${a.addr.toString('hex')}/${a.port}`)),
      },
      apiServers: [parseApiAddress('192.168.1.5:6443')],
      logger: pino({ level: 'silent' }),
      stat: (p) => ({ dev: p.endsWith('a') ? 61n : 62n, ino: 1n, parentDev: 2049n }),
    });
    expect(pushed.apis).toEqual([['2/c0a80105/6443', '10/00000000000000000000ffffc0a80105/6443']]);
    const k = (vol: string, sandbox = false): ContainerInput =>
      ({
        pod: { name: 'web', namespace: 'shop', sandbox },
        mounts: [{ source: `/k/${vol}`, destination: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
      }) as ContainerInput;
    const svc = { host: '10.96.0.1', port: 443 };
    const a1 = {};
    const a2 = {};
    const b = {};
    v.add({}, k('a', true), svc); // a sandbox: nothing
    v.add({}, { mounts: k('a').mounts } as ContainerInput, svc); // not a pod's: nothing
    expect(pushed.devs).toEqual([]);
    v.add(a1, k('a'), svc);
    v.add(a2, k('a'), svc);
    v.add(b, k('b'), undefined);
    expect(pushed.devs).toEqual([[61], [61, 62]]);
    expect(pushed.apis.at(-1)).toContain('2/0a600001/443');
    expect(v.apiServers(a1).map((x) => `${x.text} ${x.source}`)).toEqual(['192.168.1.5:6443 policy', '10.96.0.1:443 env']);
    expect(v.apiServers(b).map((x) => x.text)).toEqual(['192.168.1.5:6443']);
    expect(v.owner(61)).toMatchObject({ pod: 'shop/web', volume: { source: '/k/a' } });
    v.remove(a1);
    expect(pushed.devs).toHaveLength(2); // a2 still holds the volume and the address
    v.remove(a2);
    expect(pushed.devs.at(-1)).toEqual([62]);
    expect(pushed.apis.at(-1)).toEqual(['2/c0a80105/6443', '10/00000000000000000000ffffc0a80105/6443']);
    expect(v.owner(61)).toBeUndefined();
    expect(v.size).toEqual({ volumes: 1, apiServers: 1 });
  });
});
