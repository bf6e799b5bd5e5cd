// SPDX-License-Identifier: LGPL-2.1-or-later
// Unit tests of signaling/web/mark.js: the ball frame mark, drawn here from the README's rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

const { readMark, markLayout, crc16 } = await import(path.join(process.env.POINTCAST_SOURCE_ROOT, 'signaling/web/mark.js'));

function drawMark(frame, width, { noise = 0, flip = null } = {}) {
  const L = markLayout(width);
  const img = new Uint8ClampedArray(width * L.height * 4);
  const f = frame % 2 ** 24;
  const word = f * 65536 + crc16([(f >> 16) & 255, (f >> 8) & 255, f & 255]);
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 2;
  for (let k = 0; k < L.perRow * L.rows; k++) {
    let bit = k < 40 * L.copies ? Math.floor(word / 2 ** (39 - (k % 40))) % 2 : 0;
    if (flip && flip(k)) bit ^= 1;
    const col = k % L.perRow;
    const row = Math.floor(k / L.perRow);
    for (let y = 16 * row; y < 16 * row + 16; y++) {
      for (let x = 16 * col; x < 16 * col + 16; x++) {
        const o = (y * width + x) * 4;
        const v = (bit ? 255 : 0) + noise * rnd();
        img[o] = img[o + 1] = img[o + 2] = v;
        img[o + 3] = 255;
      }
    }
  }
  return img;
}

test('CRC-16/CCITT-FALSE check value', () => {
  assert.equal(crc16([...'123456789'].map((c) => c.charCodeAt(0))), 0x29b1);
});

test('layouts from the README', () => {
  assert.deepEqual(markLayout(640), { perRow: 40, rows: 2, height: 32, copies: 2 });
  assert.deepEqual(markLayout(1920), { perRow: 120, rows: 1, height: 16, copies: 3 });
  assert.deepEqual(markLayout(320), { perRow: 20, rows: 4, height: 64, copies: 2 });
});

test('reads frame numbers at several widths', () => {
  for (const w of [320, 640, 1280, 1920]) {
    for (const f of [0, 1, 29, 12345, 2 ** 24 - 1]) assert.equal(readMark(drawMark(f, w), w), f, `${f} at ${w}`);
  }
});

test('survives coding noise and one damaged copy', () => {
  assert.equal(readMark(drawMark(4242, 640, { noise: 60 }), 640), 4242);
  // Copy 0 damaged in one cell: copy 1 still reads.
  assert.equal(readMark(drawMark(777, 640, { flip: (k) => k === 3 }), 640), 777);
});

test('no mark, or a broken one, reads as null', () => {
  const w = 640;
  const black = new Uint8ClampedArray(w * 32 * 4);
  assert.equal(readMark(black, w), null, 'all black: CRC of 0 does not match 0');
  assert.equal(readMark(drawMark(5, w, { flip: (k) => k % 40 === 30 }), w), null, 'same bit broken in every copy');
  assert.equal(readMark(new Uint8ClampedArray(10), w), null, 'too small');
});
