import type { Logger } from 'pino';
import { readHostFacts } from './host';
import { CgroupRegistry } from './container/cgroups';
import { Enricher } from './container/enrich';
import { nsFromArray } from './container/lifecycle';
import { scanExisting } from './container/scan';
import { readProc } from './process/procfs';
import { ProcessTable } from './process/table';
import type { ContainerInput } from './proto/schema';
import { loadEventSchema } from './proto/schema';

/**
 * `ctrwatch ps`: the containers running now, found the way the sensor finds
 * them (kernel facts from /proc, metadata from the host's files), with no
 * daemon asked: the Container Enumeration view of the node.
 */
export function listContainers(logger: Logger): ContainerInput[] {
  const host = readHostFacts();
  const hostNs = nsFromArray(host.hostNs);
  const cgroups = new CgroupRegistry(host.cgroup);
  cgroups.walk();
  const procs = new ProcessTable({ lookup: (pid) => readProc(pid, (x) => cgroups.idOfPid(x)) });
  const enricher = new Enricher(procs, hostNs, cgroups, logger);
  return scanExisting(hostNs, procs, (pid) => cgroups.idOfPid(pid))
    .map((c) => enricher.withEntry(enricher.enrich(c), c))
    .sort((a, b) => (a.initPid ?? 0) - (b.initPid ?? 0));
}

/** Names, images and users come from the container's creator: no control or
 * direction-changing character reaches the terminal. */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069]/g;

/** One table cell: printable, at most n characters. */
export function cut(raw: string | undefined, n: number): string {
  const s = raw?.replace(UNPRINTABLE, '?');
  return !s ? '-' : s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** The host namespaces a container shares, as a table cell (user and cgroup left out). */
export function hostNsColumn(c: ContainerInput): string {
  return (c.hostNamespaces ?? []).filter((n) => n !== 'USER' && n !== 'CGROUP').join(',') || '-';
}

export function formatTable(cs: ContainerInput[]): string {
  const rows = [['CONTAINER ID', 'RUNTIME', 'NAME', 'IMAGE', 'PID', 'USER', 'PRIVILEGED', 'HOST NS']];
  for (const c of cs) {
    rows.push([
      cut(c.id, 16),
      c.runtime ?? '-',
      cut(c.name, 24),
      cut(c.image, 32),
      String(c.initPid ?? '-'),
      cut(c.user, 16),
      c.privileged ? 'yes' : 'no',
      hostNsColumn(c),
    ]);
  }
  return alignRows(rows);
}

/** Columns padded to their widest cell, two spaces apart. */
export function alignRows(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) =>
      r
        .map((v, i) => v.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** One canonical-JSON container a line. */
export function formatJson(cs: ContainerInput[]): string {
  const schema = loadEventSchema();
  return cs
    .map((c) =>
      JSON.stringify(
        (schema.toCanonical({ containerStarted: { container: c } }) as { containerStarted: { container: unknown } }).containerStarted
          .container,
      ),
    )
    .join('\n');
}
