// proto: the wire — the event schema, the event codecs, the collector protocol (batches, acks, credentials) and the OTLP protos; the sensor's sinks and the collector both build on it.

export { loadEventSchema, type EventInput, type EventSchema } from './schema';
export { compileEventCodec, encodeOnce, type EventCodec } from './codec';
export { decodeAck, decodeBatch, encodeAck, encodeBatch, SHIP_PATH, type Ack } from './wire';
export { CredentialsError, isLoopback, readTokens, type TlsFiles } from './credentials';
export { clientCredentials, serverCredentials } from './grpc-credentials';
