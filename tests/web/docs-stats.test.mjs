// SPDX-License-Identifier: LGPL-2.1-or-later
// openapi.json validated by swagger-parser (npm, in signaling/docs), then Debian's Chromium
// (headless, playwright-core) on two pages of the daemon:
// - /docs renders Swagger UI from the daemon's own files and lists every operation of
//   signaling/docs/openapi.json, with the link to the room protocol's JSON Schema;
// - the viewer's live statistics (stats.js) chart non-zero bitrate and frame rate for a running
//   test pattern sender.
// Screenshots go to <build>/tests/web-artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildRoot, sourceRoot, startServer, stopServer } from './lib.mjs';

const require = (await import('node:module')).createRequire(import.meta.url);
let chromium = null;
try {
  ({ chromium } = require('playwright-core'));
} catch {
  /* skipped below, as in browser.test.mjs */
}
const CHROMIUM = process.env.POINTCAST_CHROMIUM || '/usr/bin/chromium';
const skipBrowser = !chromium ? 'playwright-core is not installed (./pointcast setup installs it)' : !existsSync(CHROMIUM) && `no ${CHROMIUM}`;
const artifacts = path.join(buildRoot, 'tests', 'web-artifacts');
mkdirSync(artifacts, { recursive: true });
const doc = JSON.parse(readFileSync(path.join(sourceRoot, 'signaling/docs/openapi.json'), 'utf8'));

const work = mkdtempSync(path.join(tmpdir(), 'pointcast-docs-stats-'));
mkdirSync(path.join(work, 'pipelines'));
copyFileSync(path.join(sourceRoot, 'pipelines/testsrc-sender.pipeline'), path.join(work, 'pipelines/testsrc-sender.pipeline'));
let server;
let browser;
let base;

before(async () => {
  server = await startServer(path.join(buildRoot, 'signaling/pointcast-signaling'),
    ['--host', '127.0.0.1', '--port', '0', '--web-root', path.join(sourceRoot, 'signaling/web'),
      '--docs-root', path.join(sourceRoot, 'signaling/docs'), '--pipelines-dir', path.join(work, 'pipelines'),
      '--log-level', 'INFO'], { ready: /listening on \S+?:(\d+)/i });
  base = `http://127.0.0.1:${server.port}`;
  if (skipBrowser) return;
  browser = await chromium.launchPersistentContext(mkdtempSync(path.join(work, 'profile-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
      '--disable-features=WebRtcHideLocalIpsWithMdns', '--allow-loopback-in-peer-connection'],
    viewport: { width: 1200, height: 1400 },
  });
});

after(async () => {
  if (browser) await browser.close();
  await stopServer(server);
  rmSync(work, { recursive: true, force: true });
});

async function openPage(url) {
  const page = await browser.newPage();
  page.jsErrors = [];
  page.requests = [];
  page.on('pageerror', (e) => page.jsErrors.push(String(e)));
  page.on('request', (r) => page.requests.push(r.url()));
  await page.goto(url);
  return page;
}

test('openapi.json is a valid OpenAPI 3.1 document (swagger-parser)', async () => {
  const docsRequire = (await import('node:module')).createRequire(path.join(sourceRoot, 'signaling/docs/package.json'));
  const SwaggerParser = docsRequire('@apidevtools/swagger-parser');
  const api = await SwaggerParser.validate(path.join(sourceRoot, 'signaling/docs/openapi.json'));
  assert.equal(api.openapi, '3.1.0');
  // The copy the daemon serves is the same document.
  assert.deepEqual(await (await fetch(`${base}/openapi.json`)).json(), doc);
});

test('/docs renders Swagger UI locally and lists every documented operation', { skip: skipBrowser, timeout: 60000 }, async () => {
  const page = await openPage(`${base}/docs`);
  await page.waitForSelector('.opblock-summary-path', { timeout: 30000 });
  const shown = await page.$$eval('.opblock', (blocks) => blocks.map((b) => {
    const method = b.querySelector('.opblock-summary-method')?.textContent.trim().toLowerCase();
    const p = b.querySelector('.opblock-summary-path');
    return `${method} ${p?.getAttribute('data-path') || p?.textContent.trim()}`;
  }));
  const documented = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const m of Object.keys(item)) if (['get', 'post', 'put', 'delete', 'options', 'head', 'patch'].includes(m)) documented.push(`${m} ${p}`);
  }
  assert.deepEqual([...shown].sort(), documented.sort(), 'operations on the page');
  for (const want of ['post /offer', 'delete /offer/{session}', 'get /healthz', 'get /metrics', 'get /api/pipelines',
    'post /api/pipelines/{name}/start', 'delete /api/pipelines/{id}', 'get /api/events', 'get /openapi.json', 'get /docs']) {
    assert.ok(shown.includes(want), `${want} listed`);
  }
  // The title and the bearer scheme come from the document; the schema link is on the page.
  assert.match(await page.locator('.info .title').innerText(), /pointcast-signaling/);
  assert.ok(await page.locator('.btn.authorize').count() > 0, 'an Authorize button for the bearer scheme');
  const href = await page.locator('#room-schema').getAttribute('href');
  const schema = await (await fetch(new URL(href, base))).json();
  assert.ok(schema.$defs.server_message && schema.$defs.client_message, 'room protocol schema');
  // No CDN: every request the page made went to the daemon.
  assert.deepEqual(page.requests.filter((u) => !u.startsWith(base) && !u.startsWith('data:')), []);
  await page.screenshot({ path: path.join(artifacts, 'docs.png') });
  assert.deepEqual(page.jsErrors, []);
  await page.close();
});

test('the viewer charts non-zero bitrate and frame rate of a test pattern sender', { skip: skipBrowser, timeout: 120000 }, async () => {
  const room = `stats-${process.pid}`;
  const res = await fetch(`${base}/api/pipelines/testsrc-sender/start`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ room }),
  });
  const body = await res.text();
  assert.equal(res.status, 201, body);
  const { id } = JSON.parse(body);
  try {
    const page = await openPage(`${base}/?room=${room}&connect=1`);
    // Values and the charts' own data (chart.js instances on the panel's canvases).
    const read = () => page.evaluate(() => [...window.pointcastStats.values()].map((e) => ({
      latest: e.latest,
      captions: [...e.panel.querySelectorAll('.stats-caption')].map((c) => c.textContent),
      charts: [...e.panel.querySelectorAll('canvas')].map((c) => {
        const ch = window.Chart && window.Chart.getChart(c);
        return ch ? ch.data.datasets[0].data : null;
      }),
    })));
    let seen;
    const t0 = Date.now();
    for (;;) {
      seen = await read();
      // Five seconds of samples, the last three all live: a chart of a stream, not one blip.
      const ok = seen.find((p) => p.latest && p.latest.kbpsIn > 50 && p.latest.fps > 5 && p.charts[0] &&
        p.charts[0].length >= 5 && p.charts[0].slice(-3).every((v) => v > 50) && p.charts[1].slice(-3).every((v) => v > 5));
      if (ok) break;
      assert.ok(Date.now() - t0 < 60000, `no live bitrate/fps in the charts: ${JSON.stringify(seen).slice(0, 1500)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const p = seen.find((x) => x.latest && x.latest.kbpsIn > 50);
    assert.equal(p.charts.length, 5, 'five charts: bitrate, fps, RTT, loss, jitter buffer');
    assert.ok(p.charts.every((d) => Array.isArray(d)), 'every chart is a chart.js chart');
    assert.match(p.captions.join(' | '), /bitrate in: [\d.]+ kbit\/s .*frames\/s: [\d.]+ fps.*round trip: .*packet loss: [\d.]+ %.*jitter buffer: /);
    await page.locator('.stats-box').screenshot({ path: path.join(artifacts, 'stats.png') });
    assert.deepEqual(page.jsErrors, []);
    await page.close();
  } finally {
    await fetch(`${base}/api/pipelines/${id}`, { method: 'DELETE' });
  }
});
