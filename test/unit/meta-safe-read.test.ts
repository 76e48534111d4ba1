import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listDirUnder, MetaReadError, readFileUnder, readFileUnderIfExists, statDirUnder } from '../../src/meta/safe-read';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-safe-read-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const cap = { maxBytes: 4 * 1024 * 1024 };

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MetaReadError);
    return (err as MetaReadError).reason;
  }
  throw new Error('expected a MetaReadError');
}

describe('readFileUnder', () => {
  it('reads a regular file below the root, through plain directories', () => {
    fs.mkdirSync(path.join(tmp, 'a/b'), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'a/b/config.json'), '{"ok":true}');
    expect(readFileUnder(tmp, 'a/b/config.json', cap).toString()).toBe('{"ok":true}');
    expect(readFileUnder(tmp, './a//b/config.json', cap).toString()).toBe('{"ok":true}');
  });

  it('follows a symlink in the trusted root itself (the operator chose it)', () => {
    fs.mkdirSync(path.join(tmp, 'real'));
    fs.writeFileSync(path.join(tmp, 'real/f'), 'x');
    fs.symlinkSync(path.join(tmp, 'real'), path.join(tmp, 'rootlink'));
    expect(readFileUnder(path.join(tmp, 'rootlink'), 'f', cap).toString()).toBe('x');
  });

  it('resolves the root as the kernel does, a file right in it too ("link/.." is the link target\'s parent)', () => {
    fs.mkdirSync(path.join(tmp, 'a'));
    fs.mkdirSync(path.join(tmp, 'x/y'), { recursive: true });
    fs.symlinkSync(path.join(tmp, 'x/y'), path.join(tmp, 'a/l'));
    fs.writeFileSync(path.join(tmp, 'a/f'), 'lexical');
    fs.writeFileSync(path.join(tmp, 'x/f'), 'kernel');
    expect(readFileUnder(`${tmp}/a/l/..`, 'f', cap).toString()).toBe('kernel');
    expect(readFileUnder(`${tmp}/a/l/..`, './f', cap).toString()).toBe('kernel');
  });

  it('refuses a config.json that is a symlink to /etc/shadow, without reading it', () => {
    fs.symlinkSync('/etc/shadow', path.join(tmp, 'config.json'));
    let err: unknown;
    try {
      readFileUnder(tmp, 'config.json', cap);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MetaReadError);
    const e = err as MetaReadError;
    expect(e.reason).toBe('symlink');
    expect(e.path).toBe(path.join(tmp, 'config.json'));
    expect(e.message).toContain(path.join(tmp, 'config.json'));
    expect((e.cause as NodeJS.ErrnoException).code).toBe('ELOOP');
  });

  it('refuses a relative symlink to a sibling file too (no link is trusted below the root)', () => {
    fs.writeFileSync(path.join(tmp, 'real.json'), '{}');
    fs.symlinkSync('real.json', path.join(tmp, 'config.json'));
    expect(reasonOf(() => readFileUnder(tmp, 'config.json', cap))).toBe('symlink');
  });

  it('refuses a symlinked parent directory anywhere in the path', () => {
    // <root>/bundle -> /etc ; asking for bundle/shadow must not reach /etc/shadow
    fs.symlinkSync('/etc', path.join(tmp, 'bundle'));
    expect(reasonOf(() => readFileUnder(tmp, 'bundle/shadow', cap))).toBe('symlink');
    // deeper: <root>/a/b -> <root>/elsewhere
    fs.mkdirSync(path.join(tmp, 'a'));
    fs.mkdirSync(path.join(tmp, 'elsewhere'));
    fs.writeFileSync(path.join(tmp, 'elsewhere/config.json'), '{}');
    fs.symlinkSync(path.join(tmp, 'elsewhere'), path.join(tmp, 'a/b'));
    expect(reasonOf(() => readFileUnder(tmp, 'a/b/config.json', cap))).toBe('symlink');
  });

  it('refuses a file bigger than the cap (10 MB) and accepts exactly the cap', () => {
    fs.writeFileSync(path.join(tmp, 'big'), Buffer.alloc(10 * 1024 * 1024, 0x20));
    expect(reasonOf(() => readFileUnder(tmp, 'big', cap))).toBe('too-large');
    fs.writeFileSync(path.join(tmp, 'exact'), Buffer.alloc(100, 0x41));
    expect(readFileUnder(tmp, 'exact', { maxBytes: 100 }).length).toBe(100);
    expect(reasonOf(() => readFileUnder(tmp, 'exact', { maxBytes: 99 }))).toBe('too-large');
  });

  it('reads every size whole, across the first buffer and its growth (one read when fstat had the size right)', () => {
    for (const n of [0, 1, 4095, 4096, 4097, 8193, 100_000]) {
      const body = Buffer.alloc(n);
      for (let i = 0; i < n; i++) body[i] = (i * 31 + n) & 0xff;
      fs.writeFileSync(path.join(tmp, `f${n}`), body);
      expect(readFileUnder(tmp, `f${n}`, cap).equals(body)).toBe(true);
    }
  });

  it('reads on past the size fstat gave when the file grew meanwhile (a writer appending to it)', () => {
    const f = path.join(tmp, 'grows');
    fs.writeFileSync(f, Buffer.alloc(5000, 0x61));
    const grown = Buffer.concat([Buffer.alloc(5000, 0x61), Buffer.alloc(3000, 0x62)]);
    // Grow the file right after the reader's fstat: the window the one-read shortcut must not close.
    const cjs = createRequire(import.meta.url)('node:fs') as typeof fs;
    const fstat = cjs.fstatSync;
    let grew = false;
    cjs.fstatSync = ((fd: number) => {
      const st = fstat(fd);
      if (!grew) {
        grew = true;
        fs.appendFileSync(f, Buffer.alloc(3000, 0x62));
      }
      return st;
    }) as typeof fs.fstatSync;
    syncBuiltinESMExports();
    try {
      expect(readFileUnder(tmp, 'grows', cap).equals(grown)).toBe(true);
    } finally {
      cjs.fstatSync = fstat;
      syncBuiltinESMExports();
    }
    expect(grew).toBe(true);
  });

  it('caps by bytes read, not by the size stat reports (procfs files say 0)', () => {
    // /proc/self/maps is a regular file with st_size 0 and several KB of content.
    expect(fs.statSync('/proc/self/maps').size).toBe(0);
    expect(reasonOf(() => readFileUnder('/proc/self', 'maps', { maxBytes: 64 }))).toBe('too-large');
    expect(readFileUnder('/proc/self', 'maps', { maxBytes: 1 << 20 }).length).toBeGreaterThan(64);
  });

  it('refuses a fifo without blocking on it', () => {
    const fifo = path.join(tmp, 'config.json');
    execFileSync('mkfifo', [fifo]);
    // If the open blocked, this writer would unblock it after 3 s and the elapsed time would show it.
    const writer = spawn('sh', ['-c', `sleep 3; echo x > '${fifo}'`], { stdio: 'ignore' });
    try {
      const t0 = Date.now();
      expect(reasonOf(() => readFileUnder(tmp, 'config.json', cap))).toBe('not-regular');
      expect(Date.now() - t0).toBeLessThan(1000);
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('refuses a device and a directory', () => {
    expect(reasonOf(() => readFileUnder('/dev', 'null', cap))).toBe('not-regular');
    fs.mkdirSync(path.join(tmp, 'dir'));
    expect(reasonOf(() => readFileUnder(tmp, 'dir', cap))).toBe('not-regular');
  });

  it('refuses a regular file used as a directory', () => {
    fs.writeFileSync(path.join(tmp, 'f'), 'x');
    expect(reasonOf(() => readFileUnder(tmp, 'f/config.json', cap))).toBe('not-regular');
  });

  it("refuses '..', absolute paths and NUL bytes", () => {
    expect(reasonOf(() => readFileUnder(tmp, '../etc/passwd', cap))).toBe('bad-path');
    expect(reasonOf(() => readFileUnder(tmp, 'a/../../x', cap))).toBe('bad-path');
    expect(reasonOf(() => readFileUnder(tmp, '/etc/passwd', cap))).toBe('bad-path');
    expect(reasonOf(() => readFileUnder(tmp, 'a\0b', cap))).toBe('bad-path');
    expect(reasonOf(() => readFileUnder(tmp, '', cap))).toBe('bad-path');
  });

  it('says missing for a missing file, parent or root, and readFileUnderIfExists gives undefined', () => {
    expect(reasonOf(() => readFileUnder(tmp, 'nope', cap))).toBe('missing');
    expect(reasonOf(() => readFileUnder(tmp, 'no/dir/f', cap))).toBe('missing');
    expect(reasonOf(() => readFileUnder(path.join(tmp, 'no-root'), 'f', cap))).toBe('missing');
    expect(readFileUnderIfExists(tmp, 'nope', cap)).toBeUndefined();
    fs.symlinkSync('/etc/passwd', path.join(tmp, 'l'));
    expect(reasonOf(() => readFileUnderIfExists(tmp, 'l', cap))).toBe('symlink');
  });

  it('leaks no file descriptors, on success or failure', () => {
    fs.writeFileSync(path.join(tmp, 'f'), 'x');
    fs.symlinkSync('/etc', path.join(tmp, 'l'));
    const before = fs.readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 50; i++) {
      readFileUnder(tmp, 'f', cap);
      expect(() => readFileUnder(tmp, 'l/passwd', cap)).toThrow(MetaReadError);
      expect(() => readFileUnder(tmp, 'missing', cap)).toThrow(MetaReadError);
    }
    expect(fs.readdirSync('/proc/self/fd').length).toBe(before);
  });
});

describe('listDirUnder', () => {
  it('lists names sorted and says when it stopped early', () => {
    fs.mkdirSync(path.join(tmp, 'ns/b'), { recursive: true });
    fs.mkdirSync(path.join(tmp, 'ns/a'));
    fs.writeFileSync(path.join(tmp, 'ns/c'), '');
    expect(listDirUnder(tmp, 'ns', { maxEntries: 10 })).toEqual({ names: ['a', 'b', 'c'], truncated: false });
    expect(listDirUnder(tmp, 'ns', { maxEntries: 2 }).truncated).toBe(true);
  });

  it('refuses a symlinked directory', () => {
    fs.symlinkSync('/etc', path.join(tmp, 'ns'));
    expect(reasonOf(() => listDirUnder(tmp, 'ns', { maxEntries: 10 }))).toBe('symlink');
  });
});

describe('statDirUnder', () => {
  it("gives a directory's identity and its parent's device", () => {
    fs.mkdirSync(path.join(tmp, 'pods/vol'), { recursive: true });
    const st = fs.statSync(path.join(tmp, 'pods/vol'), { bigint: true });
    expect(statDirUnder(tmp, 'pods/vol')).toEqual({ dev: st.dev, ino: st.ino, parentDev: st.dev });
    // A mount point: /proc is its own filesystem below /.
    const proc = statDirUnder('/', 'proc');
    expect(proc.dev).not.toBe(proc.parentDev);
  });

  it('refuses a link at any level below the root, a file, and a missing directory', () => {
    fs.mkdirSync(path.join(tmp, 'pods'));
    fs.symlinkSync('/proc', path.join(tmp, 'pods/vol'));
    fs.symlinkSync(tmp, path.join(tmp, 'up'));
    fs.writeFileSync(path.join(tmp, 'file'), '');
    expect(reasonOf(() => statDirUnder(tmp, 'pods/vol'))).toBe('symlink');
    expect(reasonOf(() => statDirUnder(tmp, 'up/pods'))).toBe('symlink');
    expect(reasonOf(() => statDirUnder(tmp, 'file'))).toBe('not-regular');
    expect(reasonOf(() => statDirUnder(tmp, 'pods/none'))).toBe('missing');
    expect(reasonOf(() => statDirUnder(tmp, '../etc'))).toBe('bad-path');
  });
});
