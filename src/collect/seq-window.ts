// Which sequence numbers of one sensor run the collector has written, in bounded memory: a
// contiguous high-water mark (every seq up to it is written or given up by the sensor) and a
// small set of the seqs above it that arrived early. Senders send in order, so the set stays
// empty but for gaps the sensor left (events it dropped); a batch's floor_seq closes those.

export interface SeqWindowState {
  hwm: string;
  ooo?: string[];
}

export class SeqWindow {
  private hwm: bigint;
  private readonly ooo = new Set<bigint>();
  /** Seqs given up when the early set overflowed (a sender that does not send in order). */
  overflowed = 0;

  constructor(
    state?: SeqWindowState,
    private readonly maxEarly = 4096,
  ) {
    this.hwm = state ? BigInt(state.hwm) : 0n;
    for (const s of state?.ooo ?? []) this.ooo.add(BigInt(s));
  }

  get highWater(): bigint {
    return this.hwm;
  }

  /** Every seq below `floor` is settled: stop waiting for it. */
  settle(floor: bigint): void {
    if (floor - 1n <= this.hwm) return;
    this.hwm = floor - 1n;
    for (const s of this.ooo) if (s <= this.hwm) this.ooo.delete(s);
    this.absorb();
  }

  /** True when `seq` is new (and from now on known); false for a duplicate. */
  accept(seq: bigint): boolean {
    if (seq <= this.hwm || this.ooo.has(seq)) return false;
    if (seq === this.hwm + 1n) {
      this.hwm = seq;
      this.absorb();
    } else {
      this.ooo.add(seq);
      if (this.ooo.size > this.maxEarly) {
        // Give up waiting for the oldest gap: its seqs will count as duplicates if they come.
        const min = [...this.ooo].reduce((a, b) => (b < a ? b : a));
        this.overflowed++;
        this.settle(min);
      }
    }
    return true;
  }

  private absorb(): void {
    while (this.ooo.delete(this.hwm + 1n)) this.hwm++;
  }

  toJSON(): SeqWindowState {
    return this.ooo.size ? { hwm: this.hwm.toString(), ooo: [...this.ooo].map(String) } : { hwm: this.hwm.toString() };
  }
}
