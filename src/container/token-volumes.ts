import type { Logger } from 'pino';
import { apiKey, apiText, ipBytes, kernelApiKeys, type ApiAddress } from '../detect/api-address';
import { serviceAccountMount, serviceAccountVolume, type ServiceAccountVolume } from '../meta/service-account';
import type { DirStat } from '../meta/safe-read';
import type { ContainerInput } from '../proto/schema';

/** The kernel's maps of service-account volumes and API server addresses (KernelSensor). */
export interface TokenPort {
  setTokenDevs(devs: number[]): void;
  setApiServers(list: { family: 2 | 10; addr: Buffer; port: number }[]): void;
}

/** An API server a container may reach, and who said so. */
export interface ApiServer {
  addr: ApiAddress;
  text: string;
  source: 'policy' | 'env';
}

interface Entry {
  volume?: ServiceAccountVolume;
  env?: ApiServer;
  pod: string;
}

/** Distinct API addresses learnt from containers' environments (the kernel's map holds 64 keys). */
const ENV_APIS_MAX = 16;

/**
 * The pods' service-account volumes and the API servers they are told of, per container, kept
 * in the kernel's maps while a container of the pod lives. Volumes come from the container's
 * mounts (the kubelet's CRI config, in the bundle), addresses from the policy and from the
 * KUBERNETES_SERVICE_HOST/PORT the kubelet puts in the container's environment.
 */
export class TokenVolumes<C extends object> {
  private readonly byContainer = new Map<C, Entry>();
  private readonly devs = new Map<number, Set<C>>();
  private readonly envApis = new Map<string, { api: ApiServer; holders: Set<C> }>();
  private readonly policy: ApiServer[];
  private readonly log: Logger;

  constructor(
    private readonly o: {
      port?: TokenPort;
      apiServers: readonly ApiAddress[];
      logger: Logger;
      stat?: (path: string) => DirStat;
    },
  ) {
    this.log = o.logger.child({ component: 'tokens' });
    this.policy = o.apiServers.map((a) => ({ addr: a, text: apiText(a), source: 'policy' as const }));
    if (this.policy.length) this.pushApis();
  }

  /** A container of a pod: its volume and API address, when it has them (pod sandboxes do not). */
  add(c: C, k: ContainerInput, service?: { host: string; port: number }): void {
    if (this.byContainer.has(c) || !k.pod || k.pod.sandbox) return;
    const m = serviceAccountMount(k.mounts ?? []);
    const e: Entry = { pod: `${k.pod.namespace ?? '?'}/${k.pod.name ?? '?'}` };
    if (m) {
      try {
        e.volume = serviceAccountVolume(m, this.o.stat);
      } catch (err) {
        this.log.warn({ container: k.id, err: (err as Error).message }, 'service-account volume not watched');
      }
    }
    const addr = service && ipBytes(service.host);
    if (addr && service) {
      const a: ApiAddress = { addr, port: service.port };
      const key = apiKey(a);
      const have = this.envApis.get(key);
      if (have) {
        have.holders.add(c);
        e.env = have.api;
      } else if (this.envApis.size < ENV_APIS_MAX) {
        e.env = { addr: a, text: apiText(a), source: 'env' };
        this.envApis.set(key, { api: e.env, holders: new Set([c]) });
        this.pushApis();
      } else {
        this.log.warn(
          { container: k.id, apiServer: apiText(a) },
          `more than ${ENV_APIS_MAX} API server addresses in pod environments: this one is not watched`,
        );
      }
    }
    if (!e.volume && !e.env) return;
    this.byContainer.set(c, e);
    if (e.volume) {
      const set = this.devs.get(e.volume.dev);
      if (set) set.add(c);
      else {
        this.devs.set(e.volume.dev, new Set([c]));
        this.pushDevs();
      }
    }
  }

  remove(c: C): void {
    const e = this.byContainer.get(c);
    if (!e) return;
    this.byContainer.delete(c);
    if (e.volume) {
      const set = this.devs.get(e.volume.dev);
      set?.delete(c);
      if (set && !set.size) {
        this.devs.delete(e.volume.dev);
        this.pushDevs();
      }
    }
    if (e.env) {
      const key = apiKey(e.env.addr);
      const have = this.envApis.get(key);
      have?.holders.delete(c);
      if (have && !have.holders.size) {
        this.envApis.delete(key);
        this.pushApis();
      }
    }
  }

  /** The API servers container c may reach: the policy's and its own environment's. */
  apiServers(c: C): ApiServer[] {
    const env = this.byContainer.get(c)?.env;
    return env ? [...this.policy, env] : this.policy;
  }

  /** Whose token a volume is: the pod and one of its live containers. */
  owner(dev: number): { pod: string; volume: ServiceAccountVolume; c: C } | undefined {
    const set = this.devs.get(dev);
    const c = set?.values().next().value;
    const e = c && this.byContainer.get(c);
    return c && e?.volume ? { pod: e.pod, volume: e.volume, c } : undefined;
  }

  get size(): { volumes: number; apiServers: number } {
    return { volumes: this.devs.size, apiServers: this.policy.length + this.envApis.size };
  }

  private pushDevs(): void {
    try {
      this.o.port?.setTokenDevs([...this.devs.keys()]);
    } catch (err) {
      this.log.error({ err }, 'cannot update the kernel service-account volumes: token reads may go unseen');
    }
  }

  private pushApis(): void {
    const seen = new Set<string>();
    const all = [...this.policy, ...[...this.envApis.values()].map((x) => x.api)].filter((a) => {
      const k = apiKey(a.addr);
      return !seen.has(k) && (seen.add(k), true);
    });
    try {
      this.o.port?.setApiServers(all.flatMap((a) => kernelApiKeys(a.addr)));
    } catch (err) {
      this.log.error({ err }, 'cannot update the kernel API server addresses: connects to them may go unseen');
    }
  }
}
