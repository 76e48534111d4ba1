import { loadEventSchema } from '../src/proto/schema';
import { compileEventCodec } from '../src/sinks/codec';
const s = loadEventSchema('/work/main'); const c = compileEventCodec(s);
const ev: any = { seq: 1n, timeUnixNano: 1795923700581988444n, node: 'node-a', bootId: '3f1e2d4c-0000-4000-8000-000000000001',
  containerExec: { container: { id: 'b7bff6a1f2cd5fc975b0280d300b031a39fd483f4d1e954e4e5e25f374bb0d00', runtime: 'DOCKER', name: 'web', image: 'nginx:1.27', cgroupPath: '/docker/b7bff6a1f2cd5fc975b0280d300b031a39fd483f4d1e954e4e5e25f374bb0d00', initPid: 1234 },
    process: { pid: 4242, startTimeNs: 273410000000n, exe: '/bin/sh', argv: ['sh','-c','id'], uid: 0, euid: 0, ppid: 4200, comm: 'sh' },
    parent: { pid: 4200, startTimeNs: 273400000000n, exe: '/usr/bin/runc', argv: ['runc','exec'], comm: 'runc' } } };
const N=100000;
function time(name: string, f: (i:number)=>void){ for(let i=0;i<5000;i++) f(i); const t=process.hrtime.bigint(); for (let i=0;i<N;i++) f(i); console.log(name, (Number(process.hrtime.bigint()-t)/N/1000).toFixed(2),'us'); }
const b = c.encode(ev);
time('encode', (i)=>{ ev.seq = BigInt(i); c.encode(ev); });

time('decode', ()=>c.decode(b));
time('jsonLine', ()=>c.jsonLine(b));
const o = c.decode(b);
time('stringify', ()=>JSON.stringify(o));
time('jsonLine2', ()=>c.jsonLine(b));
time('decode2', ()=>c.decode(b));
time('encode2', (i)=>{ ev.seq = BigInt(i); c.encode(ev); });
