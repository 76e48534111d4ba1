// sinks/local: the outputs on this node — stdout (JSON lines) and file: (length-delimited protobuf, rotated).

export { StdoutSink } from './stdout';
export { FileSink } from './file';
