// Reading files that a container (or whoever controls a runtime's directories) may have shaped.
//
// TOCTOU stance: we never check a path and then open it by name. The trusted root is opened once
// (symlinks above it are the operator's and are followed); every component below it is opened
// *relative to the directory fd already held*, through `/proc/self/fd/<fd>/<name>`, with
// O_NOFOLLOW (plus O_DIRECTORY for directories). The kernel therefore refuses a symlink at the
// moment of the open, on the very inode we then hold, so swapping a component for a link between
// two of our steps cannot redirect us; renames of directories we already hold do not matter. The
// final file is opened with O_NONBLOCK|O_NOCTTY so that a fifo or tty cannot block or adopt us,
// and fstat on the open fd (not lstat on a name) decides that it is a regular file. What remains
// trusted: hard links (a container cannot link to a host file it cannot see) and mounts in the
// host's mount namespace (only root on the host can make those).

import * as fs from 'node:fs';
import * as path from 'node:path';

export type MetaReadReason = 'symlink' | 'too-large' | 'not-regular' | 'missing' | 'io' | 'bad-path';

export class MetaReadError extends Error {
  override readonly name = 'MetaReadError';
  constructor(
    readonly path: string,
    readonly reason: MetaReadReason,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${reason}: ${detail}`, options);
  }
}

export interface SafeReadOptions {
  /** Largest accepted file, in bytes. At most maxBytes + 1 bytes are ever read. */
  maxBytes: number;
}

// (libuv adds O_CLOEXEC to every open itself.)
const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = fs.constants;
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
const FILE_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;

/** Split a root-relative path into plain components; '..' and absolute paths are refused. */
function components(rel: string, shown: string): string[] {
  if (rel.includes('\0')) throw new MetaReadError(shown, 'bad-path', 'NUL byte in path');
  if (path.isAbsolute(rel)) throw new MetaReadError(shown, 'bad-path', 'path below the root must be relative');
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new MetaReadError(shown, 'bad-path', "'..' is not allowed");
  return parts;
}

function errno(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** After an open below `dirFd` failed, say why in our terms (the lstat only classifies a refusal). */
function classify(err: unknown, dirFd: number, name: string, shown: string, wantDir: boolean): MetaReadError {
  const code = errno(err);
  if (code === 'ENOENT') return new MetaReadError(shown, 'missing', `'${name}' does not exist`, { cause: err });
  if (code === 'ELOOP' || code === 'ENOTDIR') {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(`/proc/self/fd/${dirFd}/${name}`);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink() || code === 'ELOOP')
      return new MetaReadError(shown, 'symlink', `'${name}' is a symbolic link`, { cause: err });
    return new MetaReadError(shown, 'not-regular', `'${name}' is not a ${wantDir ? 'directory' : 'regular file'}`, { cause: err });
  }
  return new MetaReadError(shown, 'io', `opening '${name}' failed (${code ?? 'unknown'})`, { cause: err });
}

/**
 * Open the directory `root/rel` without following any link below root; returns an fd the caller
 * must close. `shown` is the path named in errors.
 */
function openDirBelow(root: string, parts: readonly string[], shown: string): number {
  let fd: number;
  try {
    fd = fs.openSync(root, O_RDONLY | O_DIRECTORY);
  } catch (err) {
    const code = errno(err);
    throw new MetaReadError(shown, code === 'ENOENT' ? 'missing' : 'io', `cannot open root ${root} (${code})`, { cause: err });
  }
  for (const name of parts) {
    let next: number;
    try {
      next = fs.openSync(`/proc/self/fd/${fd}/${name}`, DIR_FLAGS);
    } catch (err) {
      const e = classify(err, fd, name, shown, true);
      fs.closeSync(fd);
      throw e;
    }
    fs.closeSync(fd);
    fd = next;
  }
  return fd;
}

/**
 * Read `root/rel` where nothing below `root` may be a symlink, the file must be regular and at
 * most `maxBytes` long. Throws MetaReadError naming the path and the reason.
 */
export function readFileUnder(root: string, rel: string, opts: SafeReadOptions): Buffer {
  const shown = path.join(root, rel);
  const parts = components(rel, shown);
  const name = parts.pop();
  if (name === undefined) throw new MetaReadError(shown, 'bad-path', 'no file name');
  const fd = parts.length ? openBelow(root, parts, name, shown) : openIn(root, name, shown);
  return readCapped(fd, shown, opts);
}

/** Open `name` in the directory `root/parts` (no link followed below root). */
function openBelow(root: string, parts: readonly string[], name: string, shown: string): number {
  const dirFd = openDirBelow(root, parts, shown);
  try {
    return fs.openSync(`/proc/self/fd/${dirFd}/${name}`, FILE_FLAGS);
  } catch (err) {
    throw classify(err, dirFd, name, shown, false);
  } finally {
    fs.closeSync(dirFd);
  }
}

/**
 * Open `name` right in `root` by the path `root/name`: root's links followed as opening root
 * does (no lexical clean-up), the name's refused by O_NOFOLLOW; the same guarantee as through a
 * held fd of root at half the syscalls (a container's config.json is read so at every start).
 * On a failure, the fd-held way again, to name the reason exactly as it does.
 */
function openIn(root: string, name: string, shown: string): number {
  try {
    return fs.openSync(`${root}/${name}`, FILE_FLAGS);
  } catch {
    return openBelow(root, [], name, shown);
  }
}

/** Read an open fd (closed here) of a regular file of at most maxBytes. */
function readCapped(fd: number, shown: string, opts: SafeReadOptions): Buffer {
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new MetaReadError(shown, 'not-regular', `mode ${(st.mode & 0o170000).toString(8)} is not a regular file`);
    if (st.size > opts.maxBytes) throw new MetaReadError(shown, 'too-large', `${st.size} bytes > cap ${opts.maxBytes}`);
    // The size may change under us: read until EOF, but never more than cap + 1 bytes.
    const buf = Buffer.allocUnsafe(Math.min(opts.maxBytes + 1, Math.max(st.size + 1, 4096)));
    let len = 0;
    let out = buf;
    for (;;) {
      if (len === out.length) {
        if (out.length > opts.maxBytes) break;
        const bigger = Buffer.allocUnsafe(Math.min(opts.maxBytes + 1, out.length * 2));
        out.copy(bigger, 0, 0, len);
        out = bigger;
      }
      const want = out.length - len;
      const n = fs.readSync(fd, out, len, want, null);
      if (n === 0) break;
      len += n;
      // All that fstat counted, in one short read: the end, without a read to see it (a
      // syscall of the five a file costs). A file that grew or shrank meanwhile reads on.
      if (len === st.size && n < want) break;
    }
    if (len > opts.maxBytes) throw new MetaReadError(shown, 'too-large', `more than cap ${opts.maxBytes} bytes`);
    return out.subarray(0, len);
  } catch (err) {
    if (err instanceof MetaReadError) throw err;
    throw new MetaReadError(shown, 'io', `read failed (${errno(err) ?? 'unknown'})`, { cause: err });
  } finally {
    fs.closeSync(fd);
  }
}

/** Like readFileUnder, but a missing file (or missing parent) gives undefined. */
export function readFileUnderIfExists(root: string, rel: string, opts: SafeReadOptions): Buffer | undefined {
  try {
    return readFileUnder(root, rel, opts);
  } catch (err) {
    if (err instanceof MetaReadError && err.reason === 'missing') return undefined;
    throw err;
  }
}

/**
 * Names in the directory `root/rel` (no link followed below root), sorted, at most maxEntries
 * of them; `truncated` says when there were more.
 */
export function listDirUnder(root: string, rel: string, opts: { maxEntries: number }): { names: string[]; truncated: boolean } {
  const shown = path.join(root, rel);
  const fd = openDirBelow(root, components(rel, shown), shown);
  try {
    const dir = fs.opendirSync(`/proc/self/fd/${fd}`);
    const names: string[] = [];
    let truncated = false;
    try {
      for (let ent = dir.readSync(); ent !== null; ent = dir.readSync()) {
        if (names.length >= opts.maxEntries) {
          truncated = true;
          break;
        }
        names.push(ent.name);
      }
    } finally {
      dir.closeSync();
    }
    return { names: names.sort(), truncated };
  } catch (err) {
    throw new MetaReadError(shown, 'io', `listing failed (${errno(err) ?? 'unknown'})`, { cause: err });
  } finally {
    fs.closeSync(fd);
  }
}

/** A directory's identity, and its parent's device: different devices mean it is a mount point. */
export interface DirStat {
  dev: bigint;
  ino: bigint;
  parentDev: bigint;
}

/**
 * fstat of the directory `root/rel` and of its parent, no link followed below root (a mount
 * point is crossed: that is what it is for). Throws MetaReadError naming the path and reason.
 */
export function statDirUnder(root: string, rel: string): DirStat {
  const shown = path.join(root, rel);
  const parts = components(rel, shown);
  const name = parts.pop();
  if (name === undefined) throw new MetaReadError(shown, 'bad-path', 'no directory name');
  const parentFd = openDirBelow(root, parts, shown);
  let fd: number;
  try {
    fd = fs.openSync(`/proc/self/fd/${parentFd}/${name}`, DIR_FLAGS);
  } catch (err) {
    const e = classify(err, parentFd, name, shown, true);
    fs.closeSync(parentFd);
    throw e;
  }
  try {
    const parent = fs.fstatSync(parentFd, { bigint: true });
    const st = fs.fstatSync(fd, { bigint: true });
    return { dev: st.dev, ino: st.ino, parentDev: parent.dev };
  } catch (err) {
    throw new MetaReadError(shown, 'io', `fstat failed (${errno(err) ?? 'unknown'})`, { cause: err });
  } finally {
    fs.closeSync(fd);
    fs.closeSync(parentFd);
  }
}
