import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Images seen on this node, kept across sensor restarts in
 * <stateDir>/images-seen.json (bounded). The first run seeds it silently
 * from the containers already running, so that only new images are news.
 */
const MAX_IMAGES = 10_000;

export class ImageStore {
  private readonly seen = new Map<string, number>();
  private readonly file?: string;
  /** True when no store existed: the node's images are being learnt. */
  readonly fresh: boolean;

  constructor(stateDir?: string) {
    if (!stateDir) {
      this.fresh = true;
      return;
    }
    this.file = join(stateDir, 'images-seen.json');
    let fresh = true;
    try {
      const doc = JSON.parse(readFileSync(this.file, 'utf8').slice(0, 8 << 20)) as unknown;
      if (doc && typeof doc === 'object' && !Array.isArray(doc)) {
        for (const [k, v] of Object.entries(doc as Record<string, unknown>)) if (typeof v === 'number') this.seen.set(k, v);
        fresh = false;
      }
    } catch {
      /* missing or unreadable: start afresh */
    }
    this.fresh = fresh;
  }

  /** Records the image; true when it had not been seen before. */
  add(key: string, whenMs = Date.now()): boolean {
    if (this.seen.has(key)) return false;
    this.seen.set(key, whenMs);
    if (this.seen.size > MAX_IMAGES) this.seen.delete(this.seen.keys().next().value as string);
    this.save();
    return true;
  }

  private save(): void {
    if (!this.file) return;
    try {
      mkdirSync(join(this.file, '..'), { recursive: true });
      const tmp = `${this.file}.tmp`;
      writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.seen)));
      renameSync(tmp, this.file);
    } catch {
      /* a read-only state dir costs persistence, not detection */
    }
  }
}
