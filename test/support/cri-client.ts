import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';

/**
 * A CRI client for tests: runtime.v1 over a runtime's unix socket, as the kubelet speaks it.
 * The messages are our subset of the public API (cri/runtime-v1.proto), loaded with protobufjs;
 * each call is one gRPC unary request with a deadline.
 */
export type Msg = Record<string, unknown>;

const PROTO = join(__dirname, 'cri', 'runtime-v1.proto');
const SERVICE = '/runtime.v1.RuntimeService/';

let root: protobuf.Root | undefined;
function types(): protobuf.Root {
  root ??= protobuf.loadSync(PROTO);
  return root;
}

export class CriError extends Error {
  constructor(
    readonly method: string,
    readonly code: number | undefined,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`CRI ${method}: ${detail}`, options);
    this.name = 'CriError';
  }
}

export class CriClient {
  private readonly client: grpc.Client;

  constructor(
    readonly socket: string,
    private readonly timeoutMs = 60_000,
  ) {
    this.client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  }

  /** One unary call: request and response named by the method (RunPodSandbox → RunPodSandboxRequest/Response). */
  call<R extends Msg = Msg>(method: string, req: Msg, timeoutMs = this.timeoutMs): Promise<R> {
    const reqType = types().lookupType(`runtime.v1.${method}Request`);
    const resType = types().lookupType(`runtime.v1.${method}Response`);
    let msg: protobuf.Message;
    try {
      msg = reqType.fromObject(req); // enum names to numbers
    } catch (err) {
      return Promise.reject(new CriError(method, undefined, `bad request: ${(err as Error).message}`, { cause: err }));
    }
    return new Promise<R>((resolve, reject) => {
      this.client.makeUnaryRequest(
        SERVICE + method,
        (m: protobuf.Message) => Buffer.from(reqType.encode(m).finish()),
        (b: Buffer) => resType.toObject(resType.decode(b), { longs: Number, enums: String, bytes: Buffer, defaults: true }) as R,
        msg,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, res) => {
          if (err) reject(new CriError(method, err.code, err.details || err.message, { cause: err }));
          else resolve(res as R);
        },
      );
    });
  }

  version(): Promise<{ runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }> {
    return this.call('Version', { version: 'v1' });
  }

  async runPodSandbox(config: Msg): Promise<string> {
    return (await this.call<{ podSandboxId: string }>('RunPodSandbox', { config })).podSandboxId;
  }

  async createContainer(podSandboxId: string, config: Msg, sandboxConfig: Msg): Promise<string> {
    return (await this.call<{ containerId: string }>('CreateContainer', { podSandboxId, config, sandboxConfig })).containerId;
  }

  async startContainer(containerId: string): Promise<void> {
    await this.call('StartContainer', { containerId });
  }

  async execSync(containerId: string, cmd: string[], timeout = 30): Promise<{ stdout: string; stderr: string; exitCode: number }> {
    const r = await this.call<{ stdout: Buffer; stderr: Buffer; exitCode: number }>('ExecSync', { containerId, cmd, timeout });
    return { stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), exitCode: r.exitCode };
  }

  async listContainers(podSandboxId?: string): Promise<{ id: string; podSandboxId: string; metadata: { name: string } }[]> {
    const filter = podSandboxId ? { podSandboxId } : {};
    return (
      await this.call<{ containers: { id: string; podSandboxId: string; metadata: { name: string } }[] }>('ListContainers', { filter })
    ).containers;
  }

  async listPodSandbox(): Promise<{ id: string; metadata: { name: string } }[]> {
    return (await this.call<{ items: { id: string; metadata: { name: string } }[] }>('ListPodSandbox', {})).items;
  }

  async stopContainer(containerId: string, timeout = 0): Promise<void> {
    await this.call('StopContainer', { containerId, timeout });
  }

  async removeContainer(containerId: string): Promise<void> {
    await this.call('RemoveContainer', { containerId });
  }

  async stopPodSandbox(podSandboxId: string): Promise<void> {
    await this.call('StopPodSandbox', { podSandboxId });
  }

  async removePodSandbox(podSandboxId: string): Promise<void> {
    await this.call('RemovePodSandbox', { podSandboxId });
  }

  close(): void {
    this.client.close();
  }
}
