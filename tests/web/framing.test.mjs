// SPDX-License-Identifier: LGPL-2.1-or-later
// Unit tests of signaling/web/framing.js (rtcpeer's framing of messages over 64 KiB).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

const root = process.env.POINTCAST_SOURCE_ROOT;
const { Reassembler, parseAnnouncement, FramingError } = await import(path.join(root, 'signaling/web/framing.js'));

const bytes = (n, seed = 1) => Uint8Array.from({ length: n }, (_, k) => (k * 31 + seed) & 0xff);
function fragments(msg, chunk = 65536) {
  const count = Math.ceil(msg.length / chunk);
  const out = [`{"pointcast":"fragments","size":${msg.length},"count":${count}}`];
  for (let off = 0; off < msg.length; off += chunk) out.push(msg.slice(off, off + chunk).buffer);
  return out;
}

test('ordinary messages pass through untouched', () => {
  const r = new Reassembler();
  const b = bytes(1000).buffer;
  assert.equal(r.push('points', b), b);
  assert.equal(r.push('points', 'hello'), 'hello');
  assert.equal(r.push('points', '{"pointcast":"other"}'), '{"pointcast":"other"}');
});

test('a 1 MiB message arrives whole, byte for byte', () => {
  const r = new Reassembler();
  const msg = bytes(1 << 20, 7);
  const parts = fragments(msg);
  assert.equal(parts.length, 17);
  let out;
  for (const p of parts) out = r.push('points', p);
  assert.ok(out instanceof ArrayBuffer);
  assert.deepEqual(new Uint8Array(out), msg);
  const small = bytes(10).buffer;
  assert.equal(r.push('points', small), small, 'the channel is back to plain messages');
});

test('channels are independent', () => {
  const r = new Reassembler();
  const a = bytes(70000, 1);
  const b = bytes(70000, 2);
  const pa = fragments(a);
  const pb = fragments(b);
  assert.equal(r.push('a', pa[0]), null);
  assert.equal(r.push('b', pb[0]), null);
  assert.equal(r.push('a', pa[1]), null);
  assert.equal(r.push('b', pb[1]), null);
  assert.deepEqual(new Uint8Array(r.push('a', pa[2])), a);
  assert.deepEqual(new Uint8Array(r.push('b', pb[2])), b);
});

test('broken framing is reported and the channel recovers', () => {
  const r = new Reassembler();
  const parts = fragments(bytes(70000));
  r.push('c', parts[0]);
  r.push('c', parts[1]);
  assert.throws(() => r.push('c', 'interrupting text'), /interrupted after 1 of 2 pieces/);
  r.push('c', '{"pointcast":"fragments","size":10,"count":1}');
  assert.throws(() => r.push('c', bytes(11).buffer), /exceed the announced 10 bytes/);
  r.push('c', '{"pointcast":"fragments","size":10,"count":2}');
  r.push('c', bytes(4).buffer);
  assert.throws(() => r.push('c', bytes(4).buffer), /hold 8 of the announced 10/);
  assert.throws(() => r.push('c', '{"pointcast":"fragments","size":10,"count":0}'), FramingError);
  assert.throws(() => new Reassembler(100).push('c', '{"pointcast":"fragments","size":101,"count":1}'), /exceeds the limit/);
  const ok = bytes(5).buffer;
  assert.equal(r.push('c', ok), ok);
});

test('only the exact announcement form is recognised', () => {
  assert.deepEqual(parseAnnouncement('{"pointcast":"fragments","size":5,"count":1}'), { size: 5, count: 1 });
  assert.equal(parseAnnouncement('{"pointcast":"fragments", "size":5,"count":1}'), null);
  assert.equal(parseAnnouncement('{"pointcast":"fragments","size":5,"count":1,"x":1}'), null);
  assert.equal(parseAnnouncement('{"pointcast":"fragments","size":-5,"count":1}'), null);
});
