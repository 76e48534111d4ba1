// The OTLP logs protos, loaded at runtime with protobufjs from node_modules: the npm package
// @opentelemetry/otlp-grpc-exporter-base@0.34.0 (an exact dependency) ships them under
// build/protos/opentelemetry/proto/... Nothing is copied into this repository.
//
// That snapshot of opentelemetry-proto predates ExportLogsServiceResponse.partial_success, so
// the field (1: ExportLogsPartialSuccess{ int64 rejected_log_records = 1; string error_message
// = 2 }, as in opentelemetry-proto ≥ 0.19) is added to the loaded reflection here.

import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { unpackedRoot } from '../paths';

export interface OtlpProtos {
  root: protobuf.Root;
  ExportLogsServiceRequest: protobuf.Type;
  ExportLogsServiceResponse: protobuf.Type;
}

let cached: OtlpProtos | undefined;

export function protoDir(): string {
  // The single executable carries them at the same place under the root it unpacked.
  const unpacked = unpackedRoot();
  const pkg = unpacked
    ? path.join(unpacked, 'node_modules/@opentelemetry/otlp-grpc-exporter-base/package.json')
    : require.resolve('@opentelemetry/otlp-grpc-exporter-base/package.json');
  return path.join(path.dirname(pkg), 'build', 'protos');
}

export function loadOtlpProtos(): OtlpProtos {
  if (cached) return cached;
  const dir = protoDir();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(dir, target));
  root.loadSync('opentelemetry/proto/collector/logs/v1/logs_service.proto', { keepCase: false });
  const res = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse');
  if (!res.fields.partialSuccess) {
    const ns = res.parent as protobuf.Namespace;
    if (!ns.get('ExportLogsPartialSuccess')) {
      ns.add(
        new protobuf.Type('ExportLogsPartialSuccess')
          .add(new protobuf.Field('rejectedLogRecords', 1, 'int64'))
          .add(new protobuf.Field('errorMessage', 2, 'string')),
      );
    }
    res.add(new protobuf.Field('partialSuccess', 1, 'ExportLogsPartialSuccess'));
  }
  root.resolveAll();
  cached = {
    root,
    ExportLogsServiceRequest: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest'),
    ExportLogsServiceResponse: res,
  };
  return cached;
}
