import { describe, expect, it } from 'vitest';
import { parseOutputs } from '../../src/sinks/urls';
import { OutputSpecError } from '../../src/sinks/types';

describe('parseOutputs', () => {
  it('defaults to stdout and reads every form', () => {
    expect(parseOutputs([])).toEqual([{ kind: 'stdout', url: 'stdout' }]);
    const [f, g, s] = parseOutputs([
      'file:/var/log/cw/events.pb?max-mb=16&keep=3',
      'grpc://127.0.0.1:4317?batch=500&compress=gzip',
      'grpcs://collector.example:443?fsync=always',
    ]);
    expect(f).toEqual({
      kind: 'file',
      url: 'file:/var/log/cw/events.pb?max-mb=16&keep=3',
      path: '/var/log/cw/events.pb',
      maxBytes: 16 << 20,
      keep: 3,
    });
    expect(g).toMatchObject({
      kind: 'grpc',
      host: '127.0.0.1',
      port: 4317,
      tls: false,
      batchEvents: 500,
      compress: true,
      fsync: 'interval',
    });
    expect(s).toMatchObject({ kind: 'grpc', host: 'collector.example', port: 443, tls: true, fsync: 'always' });
    expect(parseOutputs(['grpc://[::1]:4317', 'grpc://localhost:1'])).toHaveLength(2);
  });

  it('refuses bad URLs, naming the URL and why', () => {
    const bad: [string[], RegExp][] = [
      [['kafka://x:1'], /--output kafka:\/\/x:1: unknown output/],
      [['file:'], /file:: no path/],
      [['file:/tmp/'], /names a directory/],
      [['file:/tmp/x?max-mb=0'], /max-mb must be a whole number/],
      [['file:/tmp/x?size=1'], /unknown option 'size'/],
      [['grpc://127.0.0.1'], /no port/],
      [['grpc://127.0.0.1:99999'], /not a URL/],
      [['grpc://u:p@127.0.0.1:1'], /no user or password/],
      [['grpc://127.0.0.1:1/path'], /no path after HOST:PORT/],
      [['grpc://10.1.2.3:4317'], /clear text; use grpcs:\/\/ .* or pass --insecure-plaintext/],
      [['grpc://127.0.0.1:1?compress=zstd'], /compress must be gzip or none/],
      [['grpc://127.0.0.1:1?fsync=sometimes'], /fsync must be/],
      [['stdout', 'stdout'], /given twice/],
      [['grpc://127.0.0.1:1', 'grpc://127.0.0.1:1?batch=5'], /given twice/],
    ];
    for (const [urls, re] of bad) {
      expect(() => parseOutputs(urls)).toThrow(OutputSpecError);
      expect(() => parseOutputs(urls)).toThrow(re);
    }
    expect(parseOutputs(['grpc://10.1.2.3:4317'], { insecurePlaintext: true })[0]).toMatchObject({ host: '10.1.2.3', tls: false });
  });
});
