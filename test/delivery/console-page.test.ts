// Every view of the console page in chromium, over stored events whose container-controlled
// strings (name, image, labels, argv, exe, mount paths, rule attributes) are HTML and script:
// each is shown as text and none runs. No root: the events are written into the store directly.
// The real-sensor version of this is test/kernel/console-browser.test.ts.

import { existsSync } from 'node:fs';
import pino from 'pino';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConsole, type RunningConsole } from '../../src/console/server';
import { EventStore } from '../../src/console/store';
import { requires } from '../support/env';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const canRun = requires(existsSync(CHROMIUM), `chromium at ${CHROMIUM} (make setup-test installs it)`);

const X = (n: number) => `<img src=x onerror="window.__cwPwned=${n}"><script>window.__cwPwned=${n}</script>`;

describe.runIf(canRun)('console page: hostile strings from containers stay text in every view', () => {
  let store: EventStore;
  let ui: RunningConsole;
  let browser: Browser;
  let page: Page;
  let detId = 0;
  const ns = (ms: number) => String(BigInt(ms) * 1_000_000n);

  beforeAll(async () => {
    store = new EventStore({ file: ':memory:', logger: pino({ level: 'silent' }), retainEveryMs: 0 });
    const now = Date.now();
    const H = { node: 'node-x', bootId: 'boot-1', instanceId: 'inst-1' };
    const c = {
      id: 'hostile1',
      runtime: 'DOCKER',
      name: X(1),
      image: X(2),
      labels: { [X(3)]: X(4) },
      mounts: [{ source: X(5), destination: '/x', type: 'bind' }],
      privileged: true,
    };
    const head = (seq: number) => ({ seq: String(seq), timeUnixNano: ns(now + seq), node: H.node, bootId: H.bootId });
    const proc = { pid: 7, exe: X(6), argv: ['sh', '-c', X(7)] };
    store.ingest(H, [
      { ...head(1), sensorReady: { version: X(8), kernelRelease: X(9) } },
      { ...head(2), containerCreated: { container: c } },
      { ...head(3), containerStarted: { container: c, process: proc } },
      {
        ...head(4),
        detection: {
          ruleId: 'escape.privileged-container',
          techniques: ['T1611'],
          severity: 'HIGH',
          message: X(10),
          container: c,
          chain: [proc, { pid: 1, exe: '/sbin/init' }],
          attributes: { [X(11)]: X(12) },
        },
      },
      { ...head(5), containerExited: { container: c, exitCode: 1 } },
    ]);
    detId = (store.db.prepare(`SELECT id FROM events WHERE kind = 'detection'`).get() as { id: number }).id;
    ui = await startConsole({ listen: '127.0.0.1:0', store, logger: pino({ level: 'silent' }) });
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    page = await browser.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    await store?.close();
  });

  const views: [string, string, number[]][] = [
    ['#/feed', '#feed', [1, 10]],
    ['#/containers', '#containers', [1, 2]],
    ['#/container/node-x/hostile1', 'main', [2, 3, 4, 5, 7]],
    ['#/event/DET', 'main', [4, 6, 7, 10, 11, 12]],
    ['#/fleet', '#fleet', [8, 9]],
  ];

  for (const [hash, sel, shown] of views)
    it(`${hash}: ${shown.length} hostile strings shown as text, none run`, async () => {
      await page.goto(`${ui.url}${hash.replace('DET', String(detId))}`);
      await page.waitForFunction(
        (s, want) => (document.querySelector(s) as HTMLElement | null)?.innerText.includes(want),
        { timeout: 10_000 },
        sel,
        X(shown[0]),
      );
      const text = await page.$eval(sel, (e) => (e as HTMLElement).innerText);
      for (const n of shown) expect(text, `string ${n}`).toContain(X(n));
      expect(await page.evaluate(() => (window as unknown as { __cwPwned?: number }).__cwPwned)).toBeUndefined();
      expect(await page.$$eval('img, script:not([src])', (els) => els.length)).toBe(0);
    });
});
