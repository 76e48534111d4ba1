// meta: readers of the files runtimes leave on the host (OCI config, runc/crun state, Docker, Podman, cgroup paths), capped and never through a container's symlinks.

export { listDirUnder, MetaReadError, readFileUnder, readFileUnderIfExists } from './safe-read';
export { parseOciConfig, readOciConfig } from './oci-config';
export { readDockerContainer } from './docker';
export { containerFromCgroupPath, containerFromProcCgroup } from './cgroup-path';
