/**
 * The running containers by cgroup id, several to an id where they share one (a container left
 * in its creator's cgroup, or in another container's). A cgroup's removal ends every container
 * in it: they are found here, instead of by asking each running container, which cost a node's
 * every cgroup rmdir as many comparisons as it had containers. One container to an id, the common
 * case, is held as itself; an array only for a shared id.
 */
export class ByCgroup<T extends object> {
  private readonly m = new Map<bigint, T | T[]>();

  add(id: bigint, v: T): void {
    const have = this.m.get(id);
    if (have === undefined) this.m.set(id, v);
    else if (Array.isArray(have)) {
      if (!have.includes(v)) have.push(v);
    } else if (have !== v) this.m.set(id, [have, v]);
  }

  delete(id: bigint, v: T): void {
    const have = this.m.get(id);
    if (have === v) this.m.delete(id);
    else if (Array.isArray(have)) {
      const i = have.indexOf(v);
      if (i < 0) return;
      have.splice(i, 1);
      if (have.length === 1) this.m.set(id, have[0]);
    }
  }

  /** The containers in this cgroup, in the order they were added: a copy, safe to change the index while walking it. */
  get(id: bigint): T[] {
    const have = this.m.get(id);
    if (have === undefined) return [];
    return Array.isArray(have) ? have.slice() : [have];
  }

  /** Ids held (a shared one counts once). */
  get size(): number {
    return this.m.size;
  }
}
