// The query parameters of an --output URL: shared by every kind of output.
import { OutputSpecError } from './types';

export function positive(url: string, params: URLSearchParams, key: string, dflt: number, max: number): number {
  const v = params.get(key);
  if (v === null) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) throw new OutputSpecError(`--output ${url}: ${key} must be a whole number from 1 to ${max}, got '${v}'`);
  return Number(v);
}

export function onlyKeys(url: string, params: URLSearchParams, allowed: string[]): void {
  for (const k of params.keys()) {
    if (!allowed.includes(k)) throw new OutputSpecError(`--output ${url}: unknown option '${k}' (known: ${allowed.join(', ') || 'none'})`);
  }
}
