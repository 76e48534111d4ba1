import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DockerMetaError,
  formatRestartPolicy,
  parseDockerConfigV2,
  parseDockerHostConfig,
  readDockerContainer,
} from '../../src/meta/docker';
import { MetaReadError } from '../../src/meta/safe-read';

const DATA_ROOT = path.join(__dirname, '../fixtures/meta/docker-data');
const ID = 'b7bff6a1f2cd5fc975b0280d300b031a39fd483f4d1e954e4e5e25f374bb0d00';
const PRIV_ID = 'e417e6dfaee54668a21dc7a7c1c30d895de8a22cff80ad404b8065bfca74b69e';

describe('recorded docker 20.10 containers (<data-root>/containers/<id>/)', () => {
  it('docker run --name cw-meta-docker --label app=cwmeta --restart on-failure:3', () => {
    const m = readDockerContainer(DATA_ROOT, ID);
    expect(m).toMatchObject({
      id: ID,
      name: 'cw-meta-docker',
      image: 'localhost/busybox:latest',
      imageId: 'sha256:06dc5170546f6dafb9ce9a1e19d731b514875a137487c283b6cf13d39ac12f13',
      labels: { app: 'cwmeta' },
      created: '2026-11-29T03:41:40.581988444Z',
      createdUnixNano: 1795923700581988444n,
      path: '/bin/sleep',
      args: ['300'],
      user: '',
      running: true,
      pid: 5324,
      privileged: false,
      restartPolicy: { name: 'on-failure', maximumRetryCount: 3 },
      networkMode: 'none',
      trimmed: false,
    });
    expect(formatRestartPolicy(m.restartPolicy)).toBe('on-failure:3');
  });

  it('the --cap-add ALL --pid=host --net=host container: not --privileged, but the modes say host', () => {
    const m = readDockerContainer(DATA_ROOT, PRIV_ID);
    expect(m.privileged).toBe(false); // --privileged cannot run on this machine; the OCI config heuristic catches it
    expect(m).toMatchObject({ pidMode: 'host', networkMode: 'host', capAdd: ['ALL'], capDrop: ['SYS_RESOURCE'], cgroupnsMode: 'host' });
    expect(m.binds).toEqual(['/:/host', '/tmp/ctrwatch-meta-rt/docker/docker.sock:/var/run/docker.sock']);
    expect(m.securityOpt).toContain('seccomp=unconfined');
    expect(formatRestartPolicy(m.restartPolicy)).toBe('no');
    expect(m.labels).toEqual({});
  });
});

describe('hostile docker files', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-docker-'));
    fs.mkdirSync(path.join(root, 'containers', ID), { recursive: true });
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('a symlinked config.v2.json or container dir is refused', () => {
    fs.symlinkSync('/etc/shadow', path.join(root, 'containers', ID, 'config.v2.json'));
    expect(() => readDockerContainer(root, ID)).toThrow(MetaReadError);
    fs.rmSync(path.join(root, 'containers', ID), { recursive: true });
    fs.symlinkSync(path.join(DATA_ROOT, 'containers', ID), path.join(root, 'containers', ID));
    expect(() => readDockerContainer(root, ID)).toThrow(/symlink/);
  });

  it('ids that are not 64 hex are refused before any open', () => {
    expect(() => readDockerContainer(root, '../../etc')).toThrow(DockerMetaError);
    expect(() => readDockerContainer(root, ID.toUpperCase())).toThrow(/bad-id/);
  });

  it('a config.v2.json naming another container is refused', () => {
    const cfg = fs.readFileSync(path.join(DATA_ROOT, 'containers', PRIV_ID, 'config.v2.json'));
    fs.writeFileSync(path.join(root, 'containers', ID, 'config.v2.json'), cfg);
    fs.writeFileSync(path.join(root, 'containers', ID, 'hostconfig.json'), '{}');
    expect(() => readDockerContainer(root, ID)).toThrow(/names container/);
  });

  it('wrong types and malformed JSON give typed errors', () => {
    const v2 = (doc: unknown) => () => parseDockerConfigV2(Buffer.from(JSON.stringify(doc)));
    expect(v2({ ID: ID, Config: { Labels: { a: 1 } } })).toThrow(/Config.Labels.a/);
    expect(v2({ ID: ID, Config: [] })).toThrow(/Config must be an object/);
    expect(v2({ ID: ID, Args: 'x' })).toThrow(/Args/);
    expect(v2({ ID: 5 })).toThrow(DockerMetaError);
    expect(() => parseDockerConfigV2(Buffer.from('{'))).toThrow(/malformed-json/);
    const hc = (doc: unknown) => () => parseDockerHostConfig(Buffer.from(JSON.stringify(doc)));
    expect(hc({ Privileged: 'true' })).toThrow(/Privileged/);
    expect(hc({ RestartPolicy: { MaximumRetryCount: '3' } })).toThrow(/MaximumRetryCount/);
    expect(hc([])).toThrow(/top level/);
  });

  it('oversized label sets and strings are trimmed with a flag', () => {
    const Labels: Record<string, string> = {};
    for (let i = 0; i < 3000; i++) Labels[`l${i}`] = 'v';
    const m = parseDockerConfigV2(Buffer.from(JSON.stringify({ ID, Name: '/' + 'n'.repeat(10_000), Config: { Labels } })));
    expect(Object.keys(m.labels)).toHaveLength(1024);
    expect(m.name.length).toBe(4095);
    expect(m.trimmed).toBe(true);
  });
});
