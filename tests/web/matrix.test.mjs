// SPDX-License-Identifier: LGPL-2.1-or-later
// The interop matrix (suite web, test browser-matrix): Chromium and Firefox ESR, each with the
// page in role auto, answer and offer, page first and sender first in the room, against
// testsrc-sender (the colour bars checked), ball-viewer (overlay on the ball of the same frame)
// and points-sender (the scatter drawn). See tests/web/interop.mjs.
//
// Which cells run: POINTCAST_MATRIX ("all", or patterns such as "firefox/offer/*/testsrc",
// comma separated), else the list in tests/web/matrix-cells.txt. One cell:
//   POINTCAST_MATRIX=firefox/offer/page-first/testsrc meson test -C build browser-matrix -v
import { test, before, after } from 'node:test';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { buildRoot } from './lib.mjs';
import { browserMissing, defaultCells, matrixMissing, parseCell, runCell, selectCells, startHarness } from './interop.mjs';

const cells = selectCells(process.env.POINTCAST_MATRIX || defaultCells());
const missing = matrixMissing();
const artifacts = path.join(buildRoot, 'tests', 'web-artifacts');
mkdirSync(artifacts, { recursive: true });
let h;

before(async () => {
  if (!missing) h = await startHarness();
});
after(async () => {
  if (h) await h.close();
});

for (const cell of cells) {
  const { browser, sender } = parseCell(cell);
  test(cell, { skip: missing || browserMissing(browser), timeout: 60000 }, async (t) => {
    let r;
    try {
      r = await runCell(h, cell, { artifacts });
    } catch (e) {
      e.message += `\n${e.details || ''}`;
      throw e;
    }
    t.diagnostic(`${cell}: ${sender === 'points' ? 'first points message' : 'first video frame'} ${r.ttffMs} ms after the sender start (${r.browserVersion}; page ${r.peer.polite ? 'polite' : 'impolite'}, ${r.peer.offers} offer(s), ${r.peer.answers} answer(s), ${r.peer.rollbacks} rollback(s))`);
  });
}
