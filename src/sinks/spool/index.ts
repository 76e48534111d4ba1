// sinks/spool: the disk spool (segments, fsync policy, eviction by class) and the one queue → spool → send loop every remote output runs on.

export { Spool, SpoolError, FSYNC_POLICIES, type FsyncPolicy, type SpoolBatch, type SpoolIdentity } from './spool';
export { SpooledSink, type SendResult, type SpooledSinkOptions } from './spooled-sink';
