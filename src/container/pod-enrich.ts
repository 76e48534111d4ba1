import { containerdNamespaceOfBundle, podIdentity } from '../meta/pod';
import type { OciConfigSummary } from '../meta/oci-config';
import type { PodInput } from '../proto/schema';
import type { PodLabelSource } from './pod-store';

/**
 * The pod record of a container a CRI runtime made (see meta/pod.ts for what is trusted):
 * identity from the bundle's CRI annotations, labels and annotations of its sandbox from
 * containerd's store when the bundle is containerd's. Undefined for a container of no pod.
 */
export function podOf(
  oci: OciConfigSummary,
  containerId: string,
  bundle: string | undefined,
  labels: PodLabelSource | undefined,
  problems: string[],
): PodInput | undefined {
  const id = podIdentity(oci.cri, containerId);
  if (!id) return undefined;
  const pod: PodInput = { ...id };
  if (!pod.sandbox) delete pod.sandbox;
  const ns = bundle ? containerdNamespaceOfBundle(bundle) : undefined;
  if (labels && ns && id.sandboxId) {
    const found = labels.sandbox(ns, id.sandboxId, problems);
    if (found) {
      pod.labels = found.labels;
      pod.annotations = found.annotations;
      pod.labelsSource = 'containerd-store';
      if (found.trimmed.length) problems.push(`pod labels trimmed: ${found.trimmed.join(', ')}`);
    }
  }
  return pod;
}
