// The decode stage: one ring-buffer batch (bytes, as the addon hands it over) → decoded
// records. Records that do not decode are counted and logged, never thrown.

import type { Logger } from 'pino';
import { decodeBatch } from './decode';
import type { DecodedBatch } from './records';

export class DecodeStage {
  /** Records that could not be decoded, since start. */
  errors = 0;
  private readonly log: Logger;

  constructor(
    logger: Logger,
    private readonly next: (b: DecodedBatch) => void,
  ) {
    this.log = logger.child({ component: 'kernel' });
  }

  /** Decodes one batch and hands it on (bound: pass it as the kernel's callback). */
  readonly push = (buf: Buffer): void => {
    const batch = decodeBatch(buf);
    if (batch.errors.length) {
      this.errors += batch.errors.length;
      this.log.warn({ errors: batch.errors.slice(0, 5), count: batch.errors.length }, 'undecodable records skipped');
    }
    this.next(batch);
  };
}
