// The console in a real browser (Debian's chromium, driven by puppeteer-core): a real sensor on
// this node ships to a real `ctrwatch collect --ui`, a privileged container carrying a hostile
// label runs the cgroup v1 release_agent escape, and the page shows it all: in the live feed
// without a reload, on the container's timeline, in the ATT&CK matrix, and as a detection with
// its process chain. Strings from the container stay text. Screenshots of each view are saved
// under artifacts/console/ (CTRWATCH_ARTIFACTS overrides).

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRunKernelTests, requires, scaled } from '../support/env';
import { CtrwatchProcess } from '../support/ctrwatch';
import { dropNamedHierarchy } from '../support/cgroup-v1';
import { freePort } from '../support/net';
import { RuntimeLab, type Started } from '../support/runtimes';

const BIN = join(__dirname, '../../bin/ctrwatch');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = process.env.CTRWATCH_ARTIFACTS ?? join(__dirname, '../../artifacts/console');
const TOKEN = 'console-test-token';
const HOSTILE_LABEL = '<img src=x onerror="window.__cwPwned=1">';
const HOSTILE_ARGV = '<script>window.__cwPwned=2</script>';

const canRun = canRunKernelTests && requires(existsSync(CHROMIUM), `chromium at ${CHROMIUM} (make setup-test installs it)`);

describe.runIf(canRun)('the console in a browser: real sensor → ctrwatch collect --ui → chromium', () => {
  let dir: string;
  let lab: RuntimeLab;
  let collector: ChildProcess | undefined;
  let cw: CtrwatchProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let ui: string;
  let c: Started | undefined;
  const hierarchy = `cwui-${process.pid}`;
  let escaped = false;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cw-console-e2e-'));
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(join(dir, 'tokens'), `${TOKEN}\n`);
    lab = await RuntimeLab.open();
    const [port, uiPort] = [await freePort(), await freePort()];
    ui = `http://127.0.0.1:${uiPort}/`;
    collector = spawn(
      process.execPath,
      [
        BIN,
        'collect',
        '--listen',
        `127.0.0.1:${port}`,
        '--out',
        join(dir, 'out'),
        '--ui',
        `127.0.0.1:${uiPort}`,
        '--token-file',
        join(dir, 'tokens'),
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    cw = await CtrwatchProcess.start([
      '--output',
      'stdout',
      '--output',
      `grpc://127.0.0.1:${port}`,
      '--token-file',
      join(dir, 'tokens'),
      '--stats-interval-s',
      '1',
      '--spool-dir',
      join(dir, 'spool'),
      '--state-dir',
      join(dir, 'state'),
    ]);
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 900 });
  });

  afterAll(async () => {
    await browser?.close();
    await cw?.stop();
    if (c) await lab.stop(c).catch(() => undefined);
    await lab?.close();
    if (escaped) dropNamedHierarchy(hierarchy);
    if (collector && collector.exitCode === null) {
      collector.kill('SIGTERM');
      await new Promise((r) => collector!.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const text = (sel: string) => page.$eval(sel, (e) => (e as HTMLElement).innerText);
  const waitText = (sel: string, s: string, ms = 20_000) =>
    page.waitForFunction(
      (q, want) => (document.querySelector(q) as HTMLElement | null)?.innerText.includes(want),
      { timeout: scaled(ms) },
      sel,
      s,
    );
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  const noScriptRan = async () => {
    expect(await page.evaluate(() => (window as unknown as { __cwPwned?: number }).__cwPwned)).toBeUndefined();
    expect(await page.$$eval('img', (imgs) => imgs.length)).toBe(0);
  };

  it('asks for the token, then shows a privileged container and a release_agent escape live, without a reload', async () => {
    await page.goto(`${ui}#/feed`);
    await page.waitForSelector('#token:not([hidden])');
    await page.type('#token input[name=token]', TOKEN);
    await page.click('#token button');
    await page.waitForSelector('#feed .gridjs-table');
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));

    const agentDir = mkdtempSync(join(lab.dir, 'ui-escape-'));
    const agent = join(agentDir, 'agent.sh');
    writeFileSync(agent, `#!/bin/sh\necho ran > ${join(agentDir, 'marker')}\n`);
    chmodSync(agent, 0o755);
    c = await lab.start('runc', {
      args: ['/bin/sleep', '300'],
      privileged: true,
      hostPid: true,
      hostCgroupns: true,
      annotations: { 'console.test/hostile': HOSTILE_LABEL },
    });
    escaped = true;
    await lab.exec(c, [
      '/bin/sh',
      '-c',
      [
        `: '${HOSTILE_ARGV}'`,
        `mkdir -p /tmp/cg && mount -t cgroup -o none,name=${hierarchy} cgroup /tmp/cg`,
        `mkdir -p /tmp/cg/x && echo 1 > /tmp/cg/x/notify_on_release`,
        `echo ${agent} > /tmp/cg/release_agent`,
        `sh -c 'echo $$ > /tmp/cg/x/cgroup.procs'`,
      ].join(' && '),
    ]);
    await cw!.detection('escape.kernel-control-write', (d) => d.container?.id === c!.id && d.attributes.file.endsWith('release_agent'));
    await waitText('#feed', 'escape.privileged-container');
    await waitText('#feed', 'escape.kernel-control-write: ');
    expect(await text('#feed')).toContain(c.id.slice(0, 12));
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    await shot('feed');
    await noScriptRan();
  });

  it("shows the container's timeline (created, started, exited), its metadata and the hostile label as text", async () => {
    await lab.stop(c!);
    await cw!.waitFor((e) => e.containerExited?.container?.id === c!.id, 20_000);
    await page.goto(`${ui}#/containers?node=${encodeURIComponent(hostname())}`);
    await waitText('#containers', c!.id.slice(0, 12));
    await shot('containers');
    await page.goto(`${ui}#/container/${encodeURIComponent(hostname())}/${encodeURIComponent(c!.id)}`);
    await waitText('ol.timeline', 'exited', 20_000);
    const kinds = await page.$$eval('ol.timeline li', (lis) => lis.map((l) => l.className));
    expect(kinds.indexOf('tl-created')).toBeGreaterThanOrEqual(0);
    expect(kinds.indexOf('tl-started')).toBeGreaterThan(kinds.indexOf('tl-created'));
    expect(kinds.indexOf('tl-exited')).toBeGreaterThan(kinds.indexOf('tl-started'));
    expect(kinds).toContain('tl-exec');
    expect(await text('ol.timeline .tl-exited')).toMatch(/exit code \d+/);
    expect(await text('dl.kv')).toMatch(/privileged\s+yes/);
    expect(await text('table.labels')).toContain(HOSTILE_LABEL);
    await noScriptRan();
    await shot('container');
  });

  it('counts T1611 in the ATT&CK matrix for this node, and the cell leads to its detections', async () => {
    await page.goto(`${ui}#/attack?window=1h`);
    await page.waitForSelector('#matrix');
    const col = 1 + ['T1610', 'T1611', 'T1613', 'T1053.007', 'T1543.005', 'T1204.003'].indexOf('T1611');
    const cell = `#matrix tr[data-node="${hostname()}"] td:nth-of-type(${col})`;
    const n = Number(await text(cell));
    const fromSensor = cw!.events.filter((e) => e.detection?.techniques?.includes('T1611')).length;
    expect(n).toBeGreaterThanOrEqual(3);
    expect(n).toBeLessThanOrEqual(fromSensor);
    await shot('attack');
    await page.click(`${cell} a`);
    await page.waitForFunction(() => location.hash.startsWith('#/feed') && location.hash.includes('technique=T1611'));
    await waitText('#feed', 'escape.kernel-control-write');
  });

  it('shows a detection with its process chain as a tree, and the container beside it', async () => {
    const r = await page.evaluate(
      async (tok) =>
        (await fetch('/api/events?rule=escape.kernel-control-write&limit=20', { headers: { authorization: `Bearer ${tok}` } })).json(),
      TOKEN,
    );
    const det = (r.events as { id: number; detection: { attributes: Record<string, string>; chain: { pid: number }[] } }[]).find((e) =>
      e.detection.attributes.file.endsWith('release_agent'),
    )!;
    expect(det).toBeDefined();
    await page.goto(`${ui}#/event/${det.id}`);
    await page.waitForSelector('#chain');
    const chain = await text('#chain');
    for (const p of det.detection.chain) expect(chain).toContain(`pid ${p.pid}`);
    expect(chain).toContain(HOSTILE_ARGV);
    // A tree: the acting process is the deepest node, its ancestors above it.
    const depth = await page.$eval('#chain .proc.acting', (e) => {
      let d = 0;
      for (let n: Element | null = e; n && n.id !== 'chain'; n = n.parentElement) if (n.tagName === 'UL') d++;
      return d;
    });
    expect(depth).toBe(det.detection.chain.length - 1);
    expect(await page.$eval('.cols section:nth-of-type(2)', (e) => (e as HTMLElement).innerText)).toContain(c!.id);
    await noScriptRan();
    await shot('detection');
  });

  it('fleet health lists this sensor with its version and rates; a wrong token gets 401 and a bad query 400', async () => {
    await page.goto(`${ui}#/fleet`);
    await waitText('#fleet', hostname());
    expect(await text('#fleet')).toMatch(/ok/);
    await shot('fleet');
    const status = (path: string, tok: string) =>
      page.evaluate(async (p, t) => (await fetch(p, { headers: { authorization: `Bearer ${t}` } })).status, path, tok);
    expect(await status('/api/events', 'wrong')).toBe(401);
    expect(await status('/api/events?severity=LOUD', TOKEN)).toBe(400);
    // The sensor stops: the collector raises sensorSilent, and the fleet view says so.
    await cw!.stop();
    await waitText('#fleet', 'SILENT', 30_000);
    expect(await text('.banner')).toContain(hostname());
    await shot('fleet-silent');
  });
});
