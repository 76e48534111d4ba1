// sinks: where stamped events go — one URL grammar, one factory, local and spooled remote outputs.

export {
  startSinks,
  createSinks,
  openSink,
  DEFAULT_SPOOL_DIR,
  DEFAULT_SPOOL_MAX_BYTES,
  type StartSinksOptions,
  type CreateSinksOptions,
} from './open';
export { parseOutput, parseOutputs, type OutputSpec } from './urls';
export { SinkHub, type HubStats } from './hub';
export { SINK_FLAGS, SINK_USAGE, sinkFlags, type SinkFlags } from './flags';
export { OutputSpecError, SinkError, type Sink, type SinkEvent, type SinkStats } from './types';
export { CredentialsError } from '../proto/credentials';
export { SpoolError } from './spool/spool';
