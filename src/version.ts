import { createHash } from 'node:crypto';
import { release } from 'node:os';
import type { KernelFeatures } from './native';
import type { NativeBinding } from './native';
import { sensorVersion } from './paths';

/** The event schema's protobuf package: its major version is the wire contract. */
export const SCHEMA = 'ctrwatch.v1';

export interface VersionInfo {
  sensor: string;
  /** sha256 of the BPF object built into the addon (first 16 hex digits). */
  bpfObject: string;
  schema: string;
  kernel: string;
  /** Undefined without the privileges that probing takes. */
  features?: KernelFeatures;
}

export function versionInfo(binding: NativeBinding, probe: boolean): VersionInfo {
  return {
    sensor: sensorVersion(),
    bpfObject: createHash('sha256').update(binding.object()).digest('hex').slice(0, 16),
    schema: SCHEMA,
    kernel: release(),
    features: probe ? binding.probe() : undefined,
  };
}

export function formatVersion(v: VersionInfo): string {
  const f = v.features
    ? Object.entries(v.features)
        .map(([k, on]) => `${k}${on ? '' : ' (no)'}`)
        .join(', ')
    : 'not probed (needs root: BPF probes load programs)';
  return [`ctrwatch ${v.sensor}`, `bpf object  ${v.bpfObject}`, `schema      ${v.schema}`, `kernel      ${v.kernel}: ${f}`].join('\n');
}
