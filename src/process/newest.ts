/**
 * The newest `max` processes by pid, the oldest dropped first. A ring of entries beside the map
 * says which is oldest: dropping a Map's first key instead (keys().next()) walks every hole the
 * earlier drops left at the front, which V8 compacts only on a rehash; at a few thousand
 * entries that walk cost more than the rest of a record's handling.
 */
export class NewestProcs<P extends { tgid: number }> {
  private readonly map = new Map<number, P>();
  private readonly ring: (P | undefined)[];
  private head = 0;

  constructor(private readonly max: number) {
    this.ring = new Array<P | undefined>(Math.max(1, max)).fill(undefined);
  }

  get size(): number {
    return this.map.size;
  }

  get(tgid: number): P | undefined {
    return this.map.get(tgid);
  }

  delete(tgid: number): void {
    this.map.delete(tgid);
  }

  /** Adds p as the newest; drops the oldest entry when full. */
  add(p: P): void {
    const old = this.ring[this.head];
    // The slot may name an entry already dropped or replaced: only drop it if it is still there.
    if (old !== undefined && this.map.get(old.tgid) === old) this.map.delete(old.tgid);
    this.ring[this.head] = p;
    this.head = (this.head + 1) % this.ring.length;
    this.map.set(p.tgid, p);
  }

  values(): IterableIterator<P> {
    return this.map.values();
  }
}
