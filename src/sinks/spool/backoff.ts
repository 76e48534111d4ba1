// Exponential backoff with jitter ("equal jitter": half the step fixed, half random), so that
// a fleet of sensors that lost the same collector does not come back in step.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Random in [0, 1): injected by tests. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  constructor(private readonly o: BackoffOptions) {}

  /** The delay before the next attempt; grows until reset(). */
  next(): number {
    const step = Math.min(this.o.maxMs, this.o.initialMs * 2 ** Math.min(this.attempt++, 30));
    return Math.round(step / 2 + (this.o.random ?? Math.random)() * (step / 2));
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
