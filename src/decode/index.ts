// decode: the kernel's records (bpf/ctrwatch.h) as TypeScript — their layout, the decoder, its inverse (the encoder) and the decode stage.

export { decodeBatch } from './decode';
export { encodeRecord, encodeRecords } from './encode';
export { DecodeStage } from './stage';
export type { DecodedBatch, KernelRecord } from './records';
