// Where `make package` leaves its artifacts (CTRWATCH_PKG_DIR overrides), by name.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
export const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
export const PKG_DIR = process.env.CTRWATCH_PKG_DIR ?? join(ROOT, 'pkg');
export const ARCH = process.arch === 'arm64' ? 'arm64' : 'amd64';
export const artifacts = {
  sea: join(PKG_DIR, 'ctrwatch'),
  deb: join(PKG_DIR, `ctrwatch_${VERSION}_${ARCH}.deb`),
  image: join(PKG_DIR, `ctrwatch-${VERSION}-image.tar`),
};
export const built = (f: string) => existsSync(f);
