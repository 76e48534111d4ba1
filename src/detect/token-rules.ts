import type { ConnectRecord, ObjectRecord } from '../decode/records';
import { ObjFlag } from '../decode/layout';
import type { Proc } from '../process/table';
import { apiKey, ipBytes, type ApiAddress } from './api-address';
import type { Finding, Severity } from './types';

/**
 * T1613 by the pod's own credentials: a process of a pod's container reads a service-account
 * token (the kernel decides which files are tokens: bpf/token.bpf.h), then a process of the same
 * container connects to a Kubernetes API server. Each half alone is what every in-cluster client
 * does and is not reported; the pair is, once per connecting process.
 */

const MINUTE_NS = 60_000_000_000n;
const EINPROGRESS = -115;

/** A token read, as remembered until a connect from its container. */
export interface TokenRead {
  reader: Proc;
  /** The file below the volume's root ('..2024_01_01/token'). */
  file: string;
  /** The volume's superblock (kernel encoding). */
  dev: number;
  at: bigint;
}

/**
 * The pure correlation: the last token read of each container, for `windowNs`; at most
 * `maxContainers` remembered (the oldest read goes first), and each connecting process paired
 * once (its identity remembered for `quietNs`, at most `maxReported`).
 */
export class TokenCorrelator<K> {
  private readonly reads = new Map<K, TokenRead>();
  private readonly reported = new Map<string, bigint>();

  constructor(
    readonly windowNs = 5n * MINUTE_NS,
    readonly maxContainers = 4096,
    readonly quietNs = 60n * MINUTE_NS,
    readonly maxReported = 4096,
  ) {}

  read(key: K, r: TokenRead): void {
    this.reads.delete(key);
    this.reads.set(key, r);
    if (this.reads.size > this.maxContainers) this.reads.delete(this.reads.keys().next().value as K);
  }

  /** The read a connect by `actor` of container `key` at `at` pairs with, once per actor. */
  connect(key: K, actor: Proc, at: bigint): TokenRead | undefined {
    const r = this.reads.get(key);
    if (!r || at < r.at || at - r.at > this.windowNs) return undefined;
    const who = `${actor.tgid}:${actor.startNs}`;
    const last = this.reported.get(who);
    if (last !== undefined && at - last < this.quietNs) return undefined;
    this.reported.delete(who);
    this.reported.set(who, at);
    if (this.reported.size > this.maxReported) this.reported.delete(this.reported.keys().next().value as string);
    return r;
  }

  forget(key: K): void {
    this.reads.delete(key);
  }

  get size(): number {
    return this.reads.size;
  }
}

const same = (a: Proc | undefined, b: Proc | undefined) => !!a && !!b && a.tgid === b.tgid && a.startNs === b.startNs;

/**
 * MEDIUM; LOW for the in-cluster client's own pattern: the container's entry process reads its
 * own pod's token and connects itself. HIGH when the token is another pod's (reached through a
 * host mount of the kubelet's directory).
 */
export function tokenSeverity(read: TokenRead, actor: Proc, entry: Proc | undefined, ownPod: boolean | undefined): Severity {
  if (ownPod === false) return 'HIGH';
  return same(read.reader, actor) && same(actor, entry) ? 'LOW' : 'MEDIUM';
}

/** What the token rule needs of the rest of the sensor. */
export interface TokenRuleDeps<C> {
  /** The API servers container c may reach. */
  apiServers: (c: C) => readonly { addr: ApiAddress; text: string; source: string }[];
  /** Whose volume a superblock is (undefined: not one the sensor registered, or gone). */
  owner: (dev: number) => { pod: string; destination: string; c: C } | undefined;
  name: (c: C) => string;
  pod: (c: C) => string;
  entry: (c: C) => Proc | undefined;
}

export class TokenRule<C> {
  readonly reads = new TokenCorrelator<C>();

  constructor(private readonly d: TokenRuleDeps<C>) {}

  /** A token read (cw_obj with CW_OF_TOKEN): remembered, never reported alone. */
  onObject(r: ObjectRecord, p: Proc, acting: () => C | undefined): Finding[] {
    if (!(r.flags & ObjFlag.TOKEN) || r.ret < 0) return [];
    const c = acting();
    if (c) this.reads.read(c, { reader: p, file: r.chain.join('/'), dev: r.dev, at: r.ktime });
    return [];
  }

  onConnect(r: ConnectRecord, p: Proc, acting: () => C | undefined): Finding[] {
    if (r.family === 'unix') return [];
    const c = acting();
    if (!c) return [];
    const addr = ipBytes(r.addr);
    if (!addr) return [];
    const key = apiKey({ addr, port: r.port });
    const api = this.d.apiServers(c).find((a) => apiKey(a.addr) === key);
    if (!api) return [];
    const read = this.reads.connect(c, p, r.ktime);
    if (!read) return [];
    const owner = this.d.owner(read.dev);
    const ownPod = owner ? owner.pod === this.d.pod(c) : undefined;
    const ok = r.ret === 0 || r.ret === EINPROGRESS;
    const after = Number(r.ktime - read.at) / 1e9;
    const token = owner ? `${owner.destination}/${read.file}` : read.file;
    const by = same(read.reader, p) ? 'it' : `${read.reader.comm} (pid ${read.reader.tgid})`;
    return [
      {
        ruleId: 'discovery.service-account-token',
        severity: tokenSeverity(read, p, this.d.entry(c), ownPod),
        message:
          `a process of container ${this.d.name(c)} (pod ${this.d.pod(c)}) ${ok ? 'connected' : 'tried to connect'} to the Kubernetes API server ` +
          `${api.text} ${after.toFixed(1)} s after ${by} read ${ownPod === false ? `pod ${owner!.pod}'s` : 'its'} service-account token ${token}`,
        container: c as unknown as Finding['container'],
        actor: p,
        attributes: {
          pod: this.d.pod(c),
          apiServer: api.text,
          apiServerFrom: api.source,
          token,
          tokenPod: owner?.pod ?? '',
          tokenReader: read.reader.comm,
          tokenReaderPid: String(read.reader.tgid),
          readToConnectMs: String(Math.round(after * 1000)),
          result: String(r.ret),
        },
      },
    ];
  }

  forget(c: C): void {
    this.reads.forget(c);
  }
}

/** The rule over the sensor's own parts: the registry of volumes and addresses, and the containers' records. */
export function tokenRuleOf<C extends { entry?: Proc }>(
  vols:
    | {
        apiServers: TokenRuleDeps<C>['apiServers'];
        owner: (dev: number) => { pod: string; volume: { destination: string }; c: C } | undefined;
      }
    | undefined,
  podOf: (c: C) => { namespace?: string; name?: string } | undefined,
  name: (c: C) => string,
): TokenRule<C> {
  return new TokenRule<C>({
    apiServers: (c) => vols?.apiServers(c) ?? [],
    owner: (dev) => {
      const o = vols?.owner(dev);
      return o && { pod: o.pod, destination: o.volume.destination, c: o.c };
    },
    name,
    pod: (c) => {
      const p = podOf(c);
      return `${p?.namespace ?? '?'}/${p?.name ?? '?'}`;
    },
    entry: (c) => c.entry,
  });
}
