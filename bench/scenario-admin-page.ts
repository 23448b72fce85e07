// The admin page's first load (issue 13): Debian's headless Chromium opens https://…/admin/ of a fresh server with an
// empty cache, and the rows report the bytes that crossed the wire (headers and gzip bodies, from the DevTools
// protocol's count) and the time from navigation start to the page's own "driftdb:interactive" mark (the sign-in form
// works), each against its target. Several cold loads, each in a new browser profile; the first is also the server's
// first request for the page (it reads and compresses the files then).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromiumMissing, launchChromium } from './chromium.js';
import type { BenchContext } from './context.js';
import { failureWithServer, serverLogPath, startDriftServer, stopDriftServer, type DriftServer } from './drift-server.js';
import { makeTempDir } from './procs.js';
import { failed, measured, skipped, type ScenarioResult } from './report.js';

const bytesName = 'admin page: first load, bytes transferred (gzip)';
const timeName = 'admin page: first load, time to interactive';
/** Cold loads measured; the value is their median, the notes give each. */
const coldLoads = 5;
const loadTimeoutMs = 30_000;
const bytesTargetKb = 200;
const interactiveTargetMs = 1_000;

interface Load {
  bytes: number;
  requests: number;
  decodedBytes: number;
  interactiveMs: number;
  domContentLoadedMs: number;
}

export async function adminPageScenarios(ctx: BenchContext): Promise<ScenarioResult[]> {
  const missing = chromiumMissing();
  if (missing !== null) return [skipped(bytesName, missing), skipped(timeName, missing)];
  const dataDir = join(ctx.tmpRoot, 'admin-page-data');
  mkdirSync(dataDir, { recursive: true });
  const { server } = await startDriftServer({ dataDir, logPath: serverLogPath(join(ctx.tmpRoot, 'logs'), 'admin-page'), password: ctx.password, readyTimeoutMs: 60_000, cpuProfDir: ctx.options.cpuProfDir });
  try {
    const loads: Load[] = [];
    for (let i = 0; i < coldLoads; i++) loads.push(await coldLoad(server));
    return results(loads);
  } catch (error) {
    const reason = await failureWithServer(error, server);
    return [failed(bytesName, reason), failed(timeName, reason)];
  } finally {
    await stopDriftServer(server);
  }
}

/** One load of /admin/ in a new profile (nothing cached), until the page marks itself interactive. */
async function coldLoad(server: DriftServer): Promise<Load> {
  const context = await launchChromium({ userDataDir: makeTempDir('chromium'), viewport: { width: 1280, height: 800 }, ignoreHttpsErrors: true });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(loadTimeoutMs);
    // Bytes as the network stack counted them: every response's headers and (compressed) body.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    let bytes = 0;
    let requests = 0;
    cdp.on('Network.loadingFinished', (event) => {
      bytes += event.encodedDataLength;
      requests++;
    });
    await page.goto(`${server.baseUrl}/admin/`, { waitUntil: 'load' });
    await page.waitForSelector('html[data-ready]');
    // Let a late request (the icon) finish, so its bytes count too.
    await page.waitForLoadState('networkidle');
    const timing = (await page.evaluate(`(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const mark = performance.getEntriesByName('driftdb:interactive')[0];
      const decoded = [nav, ...performance.getEntriesByType('resource')].reduce((sum, e) => sum + e.decodedBodySize, 0);
      return { interactiveMs: mark.startTime, domContentLoadedMs: nav.domContentLoadedEventEnd, decodedBytes: decoded };
    })()`)) as { interactiveMs: number; domContentLoadedMs: number; decodedBytes: number };
    return { bytes, requests, ...timing };
  } finally {
    await context.close();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function results(loads: Load[]): ScenarioResult[] {
  const kb = (bytes: number) => Math.round(bytes / 100) / 10;
  const ms = (x: number) => Math.round(x);
  const first = loads[0]!;
  const perLoad = loads.map((load) => `${kb(load.bytes)} kB in ${load.requests} responses, interactive at ${ms(load.interactiveMs)} ms`).join('; ');
  return [
    measured({
      name: bytesName,
      value: kb(median(loads.map((load) => load.bytes))),
      unit: 'kB',
      target: { on: 'value', op: '<=', limit: bytesTargetKb },
      notes: [
        `${first.requests} responses, ${kb(first.decodedBytes)} kB once unpacked; headers and gzip bodies as Chromium's network stack counted them (DevTools protocol), kB = 1000 bytes`,
        `${coldLoads} cold loads, each in a new profile: ${perLoad}`,
      ],
      details: { loads },
    }),
    measured({
      name: timeName,
      value: ms(median(loads.map((load) => load.interactiveMs))),
      unit: 'ms',
      target: { on: 'value', op: '<=', limit: interactiveTargetMs },
      notes: [
        'from navigation start to the page\'s "driftdb:interactive" mark (its script has run and the sign-in form works), median of the cold loads; ' +
          `DOMContentLoaded at ${ms(median(loads.map((load) => load.domContentLoadedMs)))} ms`,
        `the first load is also the server's first request for the page (it reads and compresses the files then): interactive at ${ms(first.interactiveMs)} ms`,
      ],
      details: { loads },
    }),
  ];
}
