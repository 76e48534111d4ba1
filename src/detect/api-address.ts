import { isIP } from 'node:net';

/**
 * Kubernetes API server addresses ("10.96.0.1:443", "[fd00::1]:6443"): parsed once, compared
 * as bytes, so that '::ffff:10.96.0.1' (an IPv4 connect through an AF_INET6 socket) and
 * '10.96.0.1' are one address.
 */
export interface ApiAddress {
  /** 4 bytes (IPv4, IPv4-mapped IPv6 folded in) or 16 (IPv6). */
  addr: Buffer;
  port: number;
}

/** IPv4 or IPv6 text to bytes; IPv4-mapped IPv6 folds to its 4 bytes. undefined when not an address. */
export function ipBytes(s: string): Buffer | undefined {
  const v = isIP(s);
  if (v === 4) return Buffer.from(s.split('.').map(Number));
  if (v !== 6) return undefined;
  // A dotted IPv4 tail ('::ffff:10.96.0.1') is two 16-bit words.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  const text = v4 ? `${s.slice(0, v4.index)}${((+v4[1] << 8) | +v4[2]).toString(16)}:${((+v4[3] << 8) | +v4[4]).toString(16)}` : s;
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const hs = head ? head.split(':').map((x) => parseInt(x, 16)) : [];
  const rs = rest ? rest.split(':').map((x) => parseInt(x, 16)) : [];
  const fill = 8 - hs.length - rs.length;
  const words = rest === undefined ? hs : [...hs, ...Array<number>(Math.max(fill, 0)).fill(0), ...rs];
  if (words.length !== 8) return undefined;
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  const mapped = out.subarray(0, 10).every((b) => b === 0) && out[10] === 0xff && out[11] === 0xff;
  return mapped ? Buffer.from(out.subarray(12)) : out;
}

/** "host:port" or "[v6]:port" → ApiAddress; throws an Error naming what is wrong. */
export function parseApiAddress(s: string): ApiAddress {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:[\]]+):(\d+)$/.exec(s);
  if (!m) throw new Error(`'${s}' is not address:port ("10.96.0.1:443" or "[fd00::1]:443")`);
  const addr = ipBytes(m[1]);
  if (!addr) throw new Error(`'${m[1]}' in '${s}' is not an IP address (names are not resolved)`);
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`port ${m[2]} in '${s}' is not from 1 to 65535`);
  return { addr, port };
}

/** The one key an address and port compare by. */
export const apiKey = (a: ApiAddress) => `${a.addr.toString('hex')}:${a.port}`;

/** How an address is shown in messages. */
export function apiText(a: ApiAddress): string {
  if (a.addr.length === 4) return `${[...a.addr].join('.')}:${a.port}`;
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(a.addr.readUInt16BE(i).toString(16));
  return `[${words.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')}]:${a.port}`;
}

/**
 * The kernel's keys for an address (bpf/token.bpf.h struct api_key): an IPv4 server is reached
 * by AF_INET sockets and, IPv4-mapped, by AF_INET6 ones.
 */
export function kernelApiKeys(a: ApiAddress): { family: 2 | 10; addr: Buffer; port: number }[] {
  if (a.addr.length === 16) return [{ family: 10, addr: a.addr, port: a.port }];
  const mapped = Buffer.alloc(16);
  mapped[10] = 0xff;
  mapped[11] = 0xff;
  a.addr.copy(mapped, 12);
  return [
    { family: 2, addr: a.addr, port: a.port },
    { family: 10, addr: mapped, port: a.port },
  ];
}
