// SPDX-License-Identifier: LGPL-2.1-or-later
// Diagnostic (not a test): inbound video stats of the page over time for one sender pipeline.
// POINTCAST_SOURCE_ROOT=. POINTCAST_BUILD_ROOT=build GST_PLUGIN_PATH=build/gst node tests/web/diag_video.mjs testsrc-sender
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildRoot, sourceRoot, startServer, stopServer } from './lib.mjs';
const require = (await import('node:module')).createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const name = process.argv[2] || 'testsrc-sender';
const secs = Number(process.argv[3] || 20);
const server = await startServer(path.join(buildRoot, 'signaling/pointcast-signaling'), ['--host', '127.0.0.1', '--port', '0',
  '--web-root', path.join(sourceRoot, 'signaling/web'), '--pipelines-dir', path.join(sourceRoot, 'pipelines'), '--log-level', 'INFO'],
{ ready: /listening on \S+?:(\d+)/i });
const browser = await chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), 'diag-')), {
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-features=WebRtcHideLocalIpsWithMdns', '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required'],
});
const page = await browser.newPage();
await page.addInitScript(() => {
  const Orig = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = function (...a) { const pc = new Orig(...a); window.__pcs.push(pc); return pc; };
  window.RTCPeerConnection.prototype = Orig.prototype;
});
await page.goto(`http://127.0.0.1:${server.port}/?room=diag`);
await page.waitForFunction(() => window.pointcast && document.querySelectorAll('#source option').length > 0);
await page.selectOption('#source', name);
await page.click('#start');
const keys = ['packetsReceived', 'packetsLost', 'framesReceived', 'framesDecoded', 'keyFramesDecoded', 'framesDropped', 'pliCount', 'firCount', 'nackCount', 'bytesReceived', 'jitterBufferEmittedCount', 'freezeCount', 'decoderImplementation'];
for (let i = 0; i < secs; i++) {
  await sleep(1000);
  const r = await page.evaluate(async (keys) => {
    const out = [];
    for (const pc of window.__pcs) {
      const rep = await pc.getStats();
      rep.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') out.push(keys.map((k) => `${k}=${s[k]}`).join(' ')); });
    }
    return out;
  }, keys);
  console.log(i, r.join(' | '));
}
await browser.close();
await stopServer(server);
process.exit(0);
