// The .deb and the single executable, installed and run in a clean Debian 12 root made by
// mmdebstrap (scripts/package/test-deb.sh: dpkg -i, apt-get -f install, doctor, purge, then the
// bare executable). Slow (a minute, more when the root is not cached): `make test-package`.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isRoot, hasBtf, requires, scaled } from '../support/env';
import { artifacts, built, ROOT } from './artifacts';

const ready = requires(
  isRoot && hasBtf && built(artifacts.deb) && built(artifacts.sea),
  `root, BTF and make package's .deb and executable (${artifacts.deb}, ${artifacts.sea})`,
);

describe.runIf(ready)('the .deb in a clean Debian 12 root', () => {
  it(
    'dpkg -i needs its declared dependencies, apt brings them, doctor passes, purge removes it; the bare executable runs without Node',
    async () => {
      const r = await new Promise<{ code: number; out: string }>((resolve) =>
        execFile(
          'bash',
          [join(ROOT, 'scripts/package/test-deb.sh'), artifacts.deb, artifacts.sea],
          { timeout: scaled(600_000), maxBuffer: 16 << 20 },
          (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
        ),
      );
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(/no node/);
      expect(r.out).toMatch(/depends on libbpf1/);
      expect(r.out).toMatch(/^ctrwatch \S+ install ok installed$/m);
      // doctor passed twice: from the package and as the bare executable
      expect(r.out.match(/^ctrwatch can run on this node$/gm)).toHaveLength(2);
      expect(r.out).toMatch(/^purged$/m);
      expect(r.out).toMatch(/--ui: the web console is not in the single executable/);
      expect(r.out).toMatch(/^collect --ui exit 2$/m);
      expect(r.out).toMatch(/^PASS$/m);
    },
    scaled(600_000),
  );
});
