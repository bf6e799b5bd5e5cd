// SPDX-License-Identifier: LGPL-2.1-or-later
// mark.js — read the frame number that `ballsrc mark=true` draws in a band at the top of each
// frame (README "Ball tracking", "The frame mark"), from RGBA pixels of that band.
//
// Used by the viewer to draw, on each decoded frame, the true position sent for exactly that frame.

/** Band layout for a frame `width` pixels wide. */
export function markLayout(width) {
  const perRow = Math.floor(width / 16);
  if (perRow < 1) return null;
  const rows = Math.ceil(80 / perRow);
  return { perRow, rows, height: 16 * rows, copies: Math.floor((rows * perRow) / 40) };
}

/** CRC-16/CCITT-FALSE of the bytes. */
export function crc16(bytes) {
  let crc = 0xffff;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

const frameBytes = (f) => [(f >>> 16) & 255, (f >>> 8) & 255, f & 255];

function wordToFrame(bits) {
  // bits[0] is bit 39 (most significant).
  let f = 0;
  for (let i = 0; i < 24; i++) f = f * 2 + bits[i];
  let crc = 0;
  for (let i = 24; i < 40; i++) crc = crc * 2 + bits[i];
  return crc16(frameBytes(f)) === crc ? f : null;
}

/**
 * Frame number from the band's pixels (`rgba`: Uint8ClampedArray of a `width` x band-height
 * image, row stride width*4), or null when the frame carries no readable mark.
 */
export function readMark(rgba, width) {
  const L = markLayout(width);
  if (!L || L.copies < 1 || rgba.length < width * L.height * 4) return null;
  const means = new Float64Array(40 * L.copies);
  for (let k = 0; k < means.length; k++) {
    const col = k % L.perRow;
    const row = Math.floor(k / L.perRow);
    let sum = 0;
    for (let y = 16 * row + 4; y < 16 * row + 12; y++) {
      let o = (y * width + 16 * col + 4) * 4;
      for (let x = 0; x < 8; x++, o += 4) sum += 0.299 * rgba[o] + 0.587 * rgba[o + 1] + 0.114 * rgba[o + 2];
    }
    means[k] = sum / 64;
  }
  const votes = new Map();
  let counted = 0;
  for (let c = 0; c < L.copies; c++) {
    const m = means.subarray(40 * c, 40 * c + 40);
    if (!m.every((v) => v < 100 || v > 156)) continue;
    const f = wordToFrame(Array.from(m, (v) => (v > 128 ? 1 : 0)));
    if (f === null) continue;
    counted++;
    votes.set(f, (votes.get(f) || 0) + 1);
  }
  if (counted) {
    for (const [f, n] of votes) if (2 * n > counted) return f;
    return null;
  }
  // No clean copy: sum the evidence of every copy bit by bit.
  const bits = [];
  for (let i = 0; i < 40; i++) {
    let s = 0;
    for (let c = 0; c < L.copies; c++) s += means[40 * c + i] - 128;
    if (Math.abs(s) < 20 * L.copies) return null;
    bits.push(s > 0 ? 1 : 0);
  }
  return wordToFrame(bits);
}
