import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { applyNice, DEFAULT_NICE, parseNice } from '../../src/sched-priority';

describe('--nice', () => {
  it('defaults to a modest raise, takes -20..19, and off keeps the inherited level', () => {
    expect(parseNice(undefined)).toBe(DEFAULT_NICE);
    expect(DEFAULT_NICE).toBeLessThan(0);
    expect(parseNice('off')).toBeUndefined();
    expect(parseNice('-20')).toBe(-20);
    expect(parseNice('19')).toBe(19);
    expect(parseNice('0')).toBe(0);
  });

  it('refuses anything else, naming the flag and the value', () => {
    for (const bad of ['-21', '20', '1.5', 'high', '', ' 3'])
      expect(() => parseNice(bad)).toThrow(`--nice must be a whole number from -20 to 19, or 'off', got '${bad}'`);
  });

  it('a refused change is logged and the sensor goes on', () => {
    const seen: number[] = [];
    const logs: string[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => logs.push(l) });
    expect(applyNice(-5, log, (n) => seen.push(n))).toBe(true);
    expect(seen).toEqual([-5]);
    const refuse = () => {
      throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
    };
    expect(applyNice(-5, log, refuse)).toBe(false);
    expect(logs.join('')).toContain('cannot set the sensor');
  });
});
