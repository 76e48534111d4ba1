import type { ContainerInput } from '../proto/schema';

/**
 * Rules on a container's pod (meta/pod.ts says what of it is trusted). The labels are the pod's
 * as its creator gave them: a plain pod can carry a Job's labels, so what they say is reported
 * as said (LOW), never used to clear anything.
 */

/** CronJob pods are named <cronjob>-<scheduled minute since epoch>-<5 chars>; their Job <cronjob>-<minute>. */
const CRONJOB_POD = /^(.+)-(\d{8,10})-[a-z0-9]{5}$/;
const CRONJOB_JOB = /^(.+)-(\d{8,10})$/;
const JOB_NAME = ['batch.kubernetes.io/job-name', 'job-name'];
const CONTROLLER_UID = ['batch.kubernetes.io/controller-uid', 'controller-uid'];

const first = (m: Record<string, string>, keys: string[]) => keys.map((k) => m[k]).find((v) => v !== undefined && v !== '');

/**
 * T1053.007: the container belongs to a Job's pod (the Job controller's labels on the pod), or a
 * CronJob's (its Job's name, or the pod's, ends in the scheduled minute). Labels are the pod's
 * (containerd's store), else the container's own (engines that copy them into the spec).
 */
export function jobOwnership(k: ContainerInput): { what: string; attributes: Record<string, string> } | undefined {
  const labels = { ...(k.labels ?? {}), ...(k.pod?.labels ?? {}) };
  const pod = k.pod?.name ?? k.podName ?? labels['io.kubernetes.pod.name'] ?? '';
  const job = first(labels, JOB_NAME);
  const uid = first(labels, CONTROLLER_UID);
  const attributes: Record<string, string> = { pod };
  if (job) attributes.job = job;
  if (uid) attributes.controllerUid = uid;
  const cron = (job && CRONJOB_JOB.exec(job)) || CRONJOB_POD.exec(pod);
  if (cron) return { what: `CronJob ${cron[1]}`, attributes: { ...attributes, cronJob: cron[1] } };
  if (job) return { what: `Job ${job}`, attributes };
  if (uid) return { what: `a Job (controller ${uid})`, attributes };
  return undefined;
}

/** A process connected to the runtime's API when a pod sandbox was made. */
export interface PodCreatorClient {
  pid: number;
  exe: string;
  comm: string;
  hostMnt: boolean;
}

/**
 * T1610: a pod sandbox made while a process that is not a trusted CRI client (the kubelet, by
 * its exe as the kernel links it) held a connection to the runtime socket the sandbox's shim
 * serves. The CRI call itself is not seen (its bytes are not read): the connection is. A
 * sandbox is made while its RunPodSandbox call waits, so its caller is connected then; another
 * client that happens to be connected at that moment is reported too (say which are expected
 * in criClients).
 */
export function podCreators(
  k: ContainerInput,
  socket: string,
  clients: PodCreatorClient[],
  trusted: readonly string[],
): { severity: 'HIGH'; message: string; client: PodCreatorClient; attributes: Record<string, string> }[] {
  const pod = `${k.pod?.namespace ?? '?'}/${k.pod?.name ?? '?'}`;
  return clients
    .filter((c) => !(c.hostMnt && trusted.includes(c.exe)))
    .map((c) => ({
      severity: 'HIGH' as const,
      message: `pod ${pod} was made while ${c.exe || c.comm} (pid ${c.pid}${c.hostMnt ? '' : ', in a container'}), not the kubelet, was connected to ${socket}`,
      client: c,
      attributes: { pod, socket, client: c.exe || c.comm, clientPid: String(c.pid), clientInContainer: String(!c.hostMnt) },
    }));
}
