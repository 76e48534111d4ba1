// collect: the reference collector, its own program (ctrwatch collect): Collector.Ship streams or a JetStream stream → per-node JSON lines, once.

export { collectMain } from './main';
export { runCollector, type CollectorOptions } from './collector';
export { JetStreamCollector } from './jetstream';
