// SPDX-License-Identifier: LGPL-2.1-or-later
// Time to first frame in the browsers (benchmark web-ttff): from the request that starts
// testsrc-sender (what *Start sender* sends) to the first video frame the page presents
// (requestVideoFrameCallback), for Chromium and Firefox ESR, page roles auto/answer/offer, page
// first and sender first in the room; each combination `--runs` times (default 3) after one
// warm-up start per browser. Target (TARGETS.md): <= 1.0 s in every combination.
//
//   ./pointcast bench --suite web-ttff
//   node bench/web/ttff.mjs [--runs N] [--cells PATTERNS] [--sender testsrc|ball]
// (POINTCAST_SOURCE_ROOT / POINTCAST_BUILD_ROOT: the source and build trees; meson sets them.)
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
process.env.POINTCAST_SOURCE_ROOT ||= path.resolve(here, '../..');
process.env.POINTCAST_BUILD_ROOT ||= path.resolve(here, '../../build');
const { BROWSER_NAMES, ROLES, ORDERS, browserMissing, matrixMissing, runCell, selectCells, startHarness } =
  await import(path.join(process.env.POINTCAST_SOURCE_ROOT, 'tests/web/interop.mjs'));

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const k = args.indexOf(`--${name}`);
  return k >= 0 ? args[k + 1] : dflt;
};
const runs = Number(opt('runs', 3));
const sender = opt('sender', 'testsrc');
const TARGET_MS = 1000;
const NO_FRAME_MS = 20000; // without a frame by then it has failed, not just slow (a loaded machine took 9 s)

const missing = matrixMissing();
if (missing) {
  console.log(`web-ttff: cannot run: ${missing}`);
  process.exit(77);
}
const browsers = BROWSER_NAMES.filter((b) => {
  const why = browserMissing(b);
  if (why) console.log(`web-ttff: ${b} left out: ${why}`);
  return !why;
});
const wanted = new Set(selectCells(opt('cells', 'all')));
const combos = browsers.flatMap((b) => ROLES.flatMap((r) => ORDERS.map((o) => `${b}/${r}/${o}/${sender}`))).filter((c) => wanted.has(c));

const h = await startHarness();
const results = new Map(combos.map((c) => [c, { ms: [], afterReg: [], failed: null }]));
try {
  for (const b of browsers) {
    // Warm-up: the browser's first page and the first gst-launch (registry, libraries) are slow once.
    await runCell(h, `${b}/answer/sender-first/${sender}`, { check: false, firstTimeoutMs: 30000 }).catch(() => {});
  }
  // Rounds over all combinations, so the machine's load drifts over all of them alike.
  for (let round = 0; round < runs; round++) {
    for (const c of combos) {
      const r = results.get(c);
      if (r.failed) continue; // it failed once: its symptom is reported, no point in waiting again
      try {
        const x = await runCell(h, c, { check: false, firstTimeoutMs: NO_FRAME_MS });
        r.ms.push(x.ttffMs);
        r.afterReg.push(x.afterRegisteredMs);
      } catch (e) {
        r.failed = e.message.replace(/; page stats .*/, '');
      }
    }
  }
} finally {
  await h.close();
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};
console.log(`\ntime to first frame, ${sender} sender -> page: start request to the first presented frame, ms (${runs} runs; target <= ${TARGET_MS})`);
console.log('"after reg.": the same from the moment the daemon logged the sender\'s registration (without its start-up)');
console.log(`${'browser'.padEnd(9)}${'role'.padEnd(8)}${'order'.padEnd(14)}${'runs'.padEnd(26)}${'median'.padStart(7)}${'after reg.'.padStart(11)}  target`);
let met = 0;
for (const [c, r] of results) {
  const [b, role, order] = c.split('/');
  const m = median(r.ms);
  const verdict = r.failed ? `FAILED: ${r.failed}` : m <= TARGET_MS ? 'met' : 'missed';
  if (!r.failed && m <= TARGET_MS) met++;
  const mr = median(r.afterReg);
  const show = (x) => (Number.isNaN(x) ? '-' : String(x));
  console.log(`${b.padEnd(9)}${role.padEnd(8)}${order.padEnd(14)}${r.ms.join(' ').padEnd(26)}${show(m).padStart(7)}${show(mr).padStart(11)}  ${verdict}`);
}
console.log(`target met in ${met} of ${results.size} combinations`);
