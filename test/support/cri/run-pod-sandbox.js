'use strict';
// One RunPodSandbox over the CRI, from a process of its own: node run-pod-sandbox.js SOCKET CONFIG_JSON.
// Prints the sandbox id. The pod tests run it from an exe named like the kubelet.
const { join } = require('node:path');
const { Buffer } = require('node:buffer');
const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs');

const [socket, configJson] = process.argv.slice(2);
const root = protobuf.loadSync(join(__dirname, 'runtime-v1.proto'));
const Req = root.lookupType('runtime.v1.RunPodSandboxRequest');
const Res = root.lookupType('runtime.v1.RunPodSandboxResponse');
const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
client.makeUnaryRequest(
  '/runtime.v1.RuntimeService/RunPodSandbox',
  (m) => Buffer.from(Req.encode(Req.fromObject(m)).finish()),
  (b) => Res.toObject(Res.decode(b)),
  { config: JSON.parse(configJson) },
  new grpc.Metadata(),
  { deadline: Date.now() + 60_000 },
  (err, res) => {
    client.close();
    if (err) {
      process.stderr.write(`RunPodSandbox: ${err.details || err.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`${res.podSandboxId}\n`);
  },
);
