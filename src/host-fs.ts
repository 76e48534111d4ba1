// The host's own filesystems (its '/', every mounted device): what "the host's disk" and
// "the host's root" mean to the object rules and to the kernel's containment maps.

/** The host's filesystems, as the sensor sees them in the host mount namespace. */
export interface HostFs {
  /** Host '/': superblock device (kernel encoding major << 20 | minor), root inode, mount id. */
  rootDev: number;
  rootIno: bigint;
  rootMntId: number;
  /** Devices (kernel encoding) of every host mount. */
  devs: ReadonlySet<number>;
}

/** Kernel dev_t encoding, as in sb->s_dev. */
export const kdev = (major: number, minor: number) => major * 0x100000 + minor;
export const devName = (dev: number) => `${Math.floor(dev / 0x100000)}:${dev % 0x100000}`;

/** Host mounts from /proc/self/mountinfo (the sensor's, in the host mount namespace) and stat('/').ino. */
export function hostFsFromMountinfo(mountinfo: string, rootIno: bigint): HostFs {
  const devs = new Set<number>();
  let root: { dev: number; id: number } | undefined;
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const m = /^(\d+):(\d+)$/.exec(f[2]);
    if (!m) continue;
    const dev = kdev(Number(m[1]), Number(m[2]));
    devs.add(dev);
    // The last mount at / is the one on top.
    if (f[4] === '/') root = { dev, id: Number(f[0]) };
  }
  if (!root) throw new Error('no mount at / in /proc/self/mountinfo');
  return { rootDev: root.dev, rootIno, rootMntId: root.id, devs };
}
