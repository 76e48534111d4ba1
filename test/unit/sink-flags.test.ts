import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { COLLECT_FLAGS, collectFlags } from '../../src/collect/flags';
import { SINK_FLAGS, sinkFlags } from '../../src/sinks/flags';

describe('CLI flags', () => {
  it('run: --output repeatable, spool, TLS, token, metrics', () => {
    const { values } = parseArgs({
      args: [
        '--output',
        'stdout',
        '--output',
        'grpcs://c:443',
        '--spool-dir',
        '/s',
        '--spool-max-mb',
        '64',
        '--tls-ca',
        '/ca',
        '--token-file',
        '/t',
        '--metrics',
        '127.0.0.1:9464',
        '--stats-interval-s',
        '5',
      ],
      options: SINK_FLAGS,
      strict: true,
    });
    expect(sinkFlags(values)).toEqual({
      outputs: ['stdout', 'grpcs://c:443'],
      options: {
        spoolDir: '/s',
        spoolMaxBytes: 64 << 20,
        tls: { ca: '/ca', cert: undefined, key: undefined },
        tokenFile: '/t',
        insecurePlaintext: false,
      },
      metrics: '127.0.0.1:9464',
      statsIntervalMs: 5000,
    });
    expect(() => sinkFlags({ 'spool-max-mb': 'lots' })).toThrow(/--spool-max-mb must be a positive whole number/);
  });

  it('collect: --listen and --out required', () => {
    const { values } = parseArgs({
      args: ['--listen', '0.0.0.0:4317', '--out', '/o', '--tls-cert', 'c', '--tls-key', 'k', '--max-mb', '8'],
      options: COLLECT_FLAGS,
      strict: true,
    });
    expect(collectFlags(values)).toMatchObject({
      listen: '0.0.0.0:4317',
      outDir: '/o',
      maxFileBytes: 8 << 20,
      tls: { cert: 'c', key: 'k' },
    });
    expect(() => collectFlags({ out: '/o' })).toThrow(/--listen/);
  });
});
