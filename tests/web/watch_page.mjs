// SPDX-License-Identifier: LGPL-2.1-or-later
// Opens the viewer page in headless Chromium (or Firefox) and prints its window.pointcast.stats() as one JSON
// line every 100 ms, for a test in another language (tests/net/test_ifdown.py, case browser).
// Ends when stdin closes or on SIGTERM, printing the page's log as {"log": ...} first.
//   node tests/web/watch_page.mjs URL PROFILE_DIR [chromium|firefox]
import { launchBrowser } from './browsers.mjs';

const [url, profileRoot, name = 'chromium'] = process.argv.slice(2);
const browser = await launchBrowser(name, profileRoot);
const page = await browser.newPage(url);
let running = true;
const stop = () => {
  running = false;
};
process.stdin.on('end', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
const t0 = Date.now();
while (running) {
  const s = await page.evaluate(() => {
    const st = window.pointcast.stats();
    return {
      videoFrames: st.videoFrames, framesDecoded: st.framesDecoded, lastMark: st.lastMark,
      peers: st.peers.map((p) => ({ id: p.id, state: p.state })),
    };
  });
  process.stdout.write(`${JSON.stringify({ t: (Date.now() - t0) / 1000, ...s })}\n`);
  await new Promise((r) => setTimeout(r, 100));
}
const log = await page.evaluate(() => document.getElementById('log').innerText);
process.stdout.write(`${JSON.stringify({ log, errors: page.errors })}\n`);
await browser.close();
process.exit(0);
