/**
 * The images part: what the image first-seen store (src/detect/image-store.ts) costs a container
 * start whose image is new to the node, with N images already held, and what writing the store
 * costs. With a built tree of an earlier commit (BENCH_IMAGES_BEFORE), that tree's store is
 * measured the same way, the order alternating: in the same process, on the same files.
 *
 * Each repetition loads a store of N images from a file written for it (as a restarted sensor
 * does), then times `add()` for new images one by one: what the detector calls in a start's
 * path. Then, this code only, `flush()` once: what the upkeep pays at most once per 5 s while
 * new images come.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CODE, quantile, summarize, treeCommit } from './lib';
import type { BenchReport, Figure } from './report-types';

interface Store {
  add(key: string): boolean;
  flush?(): void;
}
type StoreClass = new (stateDir?: string) => Store;

export interface ImagesRow {
  tree: 'this' | 'before';
  held: number;
  rep: number;
  /** add() of each new image, µs. */
  addUs: number[];
  /** flush() after them (this code), ms. */
  flushMs?: number;
}

export interface ImagesResult {
  command: string;
  held: number[];
  newPerRep: number;
  reps: number;
  rows: ImagesRow[];
  beforeDir?: string;
  beforeCommit?: string;
  errors: string[];
  wallS: number;
}

const key = (i: number) => `registry.example.com/team/app-${i}@sha256:${i.toString(16).padStart(64, '0')}`;

function load(tree: string): StoreClass {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(join(tree, 'dist', 'src', 'detect', 'image-store.js')) as { ImageStore: StoreClass }).ImageStore;
}

function once(Store: StoreClass, tree: 'this' | 'before', held: number, rep: number, fresh: number): ImagesRow {
  const dir = mkdtempSync(join(tmpdir(), 'cwbench-images-'));
  try {
    const seen: Record<string, number> = {};
    for (let i = 0; i < held; i++) seen[key(i)] = 1_700_000_000_000 + i;
    writeFileSync(join(dir, 'images-seen.json'), JSON.stringify(seen));
    const s = new Store(dir);
    const addUs: number[] = [];
    for (let i = 0; i < fresh; i++) {
      const t = process.hrtime.bigint();
      if (!s.add(key(held + i))) throw new Error(`${tree}: image ${held + i} was not new`);
      addUs.push(Number(process.hrtime.bigint() - t) / 1e3);
    }
    let flushMs: number | undefined;
    if (s.flush) {
      const t = process.hrtime.bigint();
      s.flush();
      flushMs = Number(process.hrtime.bigint() - t) / 1e6;
    }
    return { tree, held, rep, addUs, flushMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function runImages(o: { held: number[]; reps: number; fresh: number; before?: string; log: (m: string) => void }): ImagesResult {
  const t0 = Date.now();
  const res: ImagesResult = {
    command: `node dist/bench/run.js (BENCH_ONLY=images): ImageStore loaded with N images, then ${o.fresh} new ones added one by one, then one flush`,
    held: o.held,
    newPerRep: o.fresh,
    reps: o.reps,
    rows: [],
    beforeDir: o.before,
    beforeCommit: o.before ? treeCommit(o.before) : undefined,
    errors: [],
    wallS: 0,
  };
  const trees: ['this' | 'before', StoreClass][] = [['this', load(CODE)]];
  if (o.before) {
    try {
      trees.push(['before', load(o.before)]);
    } catch (e) {
      res.errors.push(`BENCH_IMAGES_BEFORE ${o.before}: ${(e as Error).message}; this code measured alone`);
    }
  }
  for (const held of o.held)
    for (let rep = 0; rep < o.reps; rep++) {
      const order = rep % 2 ? [...trees].reverse() : trees;
      for (const [tree, Store] of order) {
        const row = once(Store, tree, held, rep, o.fresh);
        res.rows.push(row);
        o.log(
          `images: ${held} held, rep ${rep}, ${tree}: add median ${quantile(row.addUs, 0.5).toFixed(1)} µs${row.flushMs !== undefined ? `, flush ${row.flushMs.toFixed(2)} ms` : ''}`,
        );
      }
    }
  res.wallS = (Date.now() - t0) / 1000;
  return res;
}

const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '—');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '—');

/** Every add of a tree at a size, all repetitions together. */
const adds = (r: ImagesResult, tree: 'this' | 'before', held: number) =>
  r.rows.filter((x) => x.tree === tree && x.held === held).flatMap((x) => x.addUs);

export function imagesFigures(r: BenchReport): Figure[] {
  const im = r.images;
  if (!im) return [];
  const big = Math.max(...im.held);
  const a = adds(im, 'this', big);
  if (!a.length) return [];
  const s = summarize(a);
  return [
    {
      id: 'images.add',
      title: `a container start with an image new to the node: the image store's time in the detection's path, ${big.toLocaleString('en-US')} images held (the images section below)`,
      command: im.command,
      unit: 'µs',
      rounds: s.n,
      median: s.median,
      q1: s.q1,
      q3: s.q3,
      p99: quantile(a, 0.99),
    },
  ];
}

export function renderImages(r: BenchReport, L: string[]): void {
  const im = r.images;
  if (!im) return;
  L.push('## The image first-seen store', '');
  L.push(
    `Command: ${im.command}. Per size, ${im.reps} repetitions of ${im.newPerRep} new images each, in one process${im.beforeCommit || im.beforeDir ? `, the tree before (${im.beforeCommit ? `\`${im.beforeCommit.slice(0, 10)}\`` : im.beforeDir}, BENCH_IMAGES_BEFORE) and this code alternating` : ''}. "add" is what the detector pays in a start's path for an image new to the node; "flush" is the write of the whole store (this code: from the upkeep, at most once per 5 s while new images come, and at the stop).`,
    '',
  );
  const trees = (['before', 'this'] as const).filter((t) => im.rows.some((x) => x.tree === t));
  L.push(
    `| images held | ${trees.map((t) => `${t === 'this' ? 'this code' : 'before'}: add median / p99, µs`).join(' | ')} | this code: flush median, ms |`,
    `|---|${trees.map(() => '---|').join('')}---|`,
  );
  for (const held of im.held) {
    const cells = trees.map((t) => {
      const a = adds(im, t, held);
      return `${f1(quantile(a, 0.5))} / ${f1(quantile(a, 0.99))}`;
    });
    const fl = im.rows.filter((x) => x.tree === 'this' && x.held === held && x.flushMs !== undefined).map((x) => x.flushMs!);
    L.push(`| ${held.toLocaleString('en-US')} | ${cells.join(' | ')} | ${fl.length ? f2(quantile(fl, 0.5)) : '—'} |`);
  }
  if (im.errors.length) L.push('', `Errors: ${im.errors.join('; ')}`);
  L.push('', `Part took ${f1(im.wallS)} s.`, '');
}
