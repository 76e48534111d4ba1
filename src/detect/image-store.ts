import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';

/**
 * Images seen on this node, kept across sensor restarts in
 * <stateDir>/images-seen.json (bounded). The first run seeds it silently
 * from the containers already running, so that only new images are news.
 * A store that cannot be read or written costs persistence, never a
 * detection: each failure is counted and logged (a write failure once per
 * distinct error, not once per write), and an unreadable store is set aside,
 * not overwritten.
 *
 * add() only records; flush() writes the file, when something was added since the last write
 * (the upkeep every 5 s, and the sensor's stop). The file is the whole store: rewritten at each
 * new image, it was 12.6 ms of every such start's detection path at 10,000 images held
 * (bench/REPORT-images.md), and a first run rewrote it once for each distinct image of the
 * containers already running. The price: images first seen in the last seconds before a crash
 * (not a stop) are news again after the restart.
 */
const MAX_IMAGES = 10_000;
const MAX_BYTES = 8 << 20;

export interface ImageStoreErrors {
  read: number;
  write: number;
}

export class ImageStore {
  private readonly seen = new Map<string, number>();
  private readonly file?: string;
  /** True when no store existed: the node's images are being learnt. */
  readonly fresh: boolean;
  readonly errors: ImageStoreErrors = { read: 0, write: 0 };
  private lastWriteError?: string;
  /** Added to since the last write. */
  private dirty = false;

  constructor(
    stateDir?: string,
    private readonly log?: Logger,
  ) {
    if (!stateDir) {
      this.fresh = true;
      return;
    }
    this.file = join(stateDir, 'images-seen.json');
    this.fresh = !this.load(this.file);
  }

  /** True when a store was read. A missing one is no error; any other failure is. */
  private load(file: string): boolean {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      this.readFailed(file, err, false);
      return false;
    }
    try {
      if (text.length > MAX_BYTES) throw new Error(`larger than ${MAX_BYTES} bytes`);
      const doc = JSON.parse(text) as unknown;
      if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('not a JSON object');
      for (const [k, v] of Object.entries(doc as Record<string, unknown>)) if (typeof v === 'number') this.seen.set(k, v);
      return true;
    } catch (err) {
      this.readFailed(file, err, true);
      return false;
    }
  }

  private readFailed(file: string, err: unknown, setAside: boolean): void {
    this.errors.read++;
    let kept: string | undefined;
    if (setAside) {
      kept = `${file}.unreadable-${Date.now()}`;
      try {
        renameSync(file, kept);
      } catch {
        kept = undefined;
      }
    }
    this.log?.warn({ err, file, keptAs: kept }, 'image store unreadable: images seen before count as new');
  }

  /** Records the image; true when it had not been seen before. flush() writes it. */
  add(key: string, whenMs = Date.now()): boolean {
    if (this.seen.has(key)) return false;
    this.seen.set(key, whenMs);
    if (this.seen.size > MAX_IMAGES) this.seen.delete(this.seen.keys().next().value as string);
    this.dirty = true;
    return true;
  }

  /** Writes the store if an image was added since the last write; a failed write is tried again at the next flush. */
  flush(): void {
    if (!this.file || !this.dirty) return;
    try {
      mkdirSync(join(this.file, '..'), { recursive: true });
      const tmp = `${this.file}.tmp`;
      writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.seen)));
      renameSync(tmp, this.file);
      this.dirty = false;
      this.lastWriteError = undefined;
    } catch (err) {
      this.errors.write++;
      const what = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      if (what !== this.lastWriteError)
        this.log?.warn({ err, file: this.file }, 'image store not written: first-seen state will not survive a restart');
      this.lastWriteError = what;
    }
  }
}
