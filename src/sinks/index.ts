// What `ctrwatch run` wires: sinks from --output URLs, sensorStats, metrics.

export { startSinks, createSinks, DEFAULT_SPOOL_DIR, DEFAULT_SPOOL_MAX_BYTES, type StartSinksOptions, type CreateSinksOptions } from './start';
export { parseOutputs, type OutputSpec } from './outputs';
export { SinkHub, type HubStats } from './hub';
export { SensorMetrics, type MetricsServer } from './metrics';
export { buildSensorStats, countersFrom, startStatsTicker, type SensorCounters } from './stats-event';
export { SINK_FLAGS, SINK_USAGE, sinkFlags, type SinkFlags } from './flags';
export { OutputSpecError, SinkError, type Sink, type SinkEvent, type SinkStats } from './types';
export { CredentialsError } from './credentials';
export { SpoolError } from './spool';
