// sinks/remote: the outputs over the network — gRPC to the collector, OTLP/HTTP logs, NATS JetStream — each a SpooledSink.

export { GrpcSink, type GrpcSpec } from './grpc';
export { OtlpSink, type OtlpSpec } from './otlp';
export { NatsSink, type NatsSpec } from './nats';
