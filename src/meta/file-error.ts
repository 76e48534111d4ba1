/** A runtime's file that is not what it should be: which file, why, and the detail. */
export class MetaFileError extends Error {
  override readonly name: string = 'MetaFileError';
  constructor(
    readonly file: string,
    readonly reason: 'malformed-json' | 'wrong-type' | 'bad-id',
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${reason}: ${detail}`, options);
  }
}
