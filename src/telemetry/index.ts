// telemetry: what the sensor says about itself — sensorStats events and Prometheus metrics.

export { SensorMetrics, type MetricsServer } from './metrics';
export { buildSensorStats, countersFrom, startStatsTicker, type Num, type SensorCounters } from './stats-event';
