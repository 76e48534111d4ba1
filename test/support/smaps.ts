// /proc/PID/smaps summed by kind of mapping: the bench's footprint part (bench/footprint.ts)
// reads the idle sensor's resident memory with it.

/** Where a mapping's resident pages are counted. */
export const FOOTPRINT_PARTS = ['anonymous', 'node', 'rings', 'addon', 'brk', 'other'] as const;
export type FootprintPart = (typeof FOOTPRINT_PARTS)[number];

/** Which part a mapping's name (smaps' last column) counts in. */
function partOf(mapping: string, nodeBinary: string): FootprintPart {
  const name = mapping.replace(/ \(deleted\)$/, '');
  if (name === '' || name.startsWith('[anon') || name.startsWith('[stack')) return 'anonymous';
  if (name === nodeBinary) return 'node';
  if (name.startsWith('anon_inode:bpf-map')) return 'rings';
  if (name.endsWith('/ctrwatch.node')) return 'addon';
  if (name === '[heap]') return 'brk';
  return 'other';
}

/** Sums smaps' Rss lines per part; MB (MiB, as every memory figure of the bench). */
export function smapsParts(smaps: string, nodeBinary: string): Record<FootprintPart, number> {
  const kb = Object.fromEntries(FOOTPRINT_PARTS.map((p) => [p, 0])) as Record<FootprintPart, number>;
  let part: FootprintPart = 'other';
  for (const line of smaps.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      part = partOf(head[1]!, nodeBinary);
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) kb[part] += Number(rss[1]);
  }
  for (const p of FOOTPRINT_PARTS) kb[p] /= 1024;
  return kb;
}
