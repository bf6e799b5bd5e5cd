// SPDX-License-Identifier: LGPL-2.1-or-later
// Unit tests of signaling/web/npy.js against files written by numpy (/usr/bin/python3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = process.env.POINTCAST_SOURCE_ROOT || path.resolve(here, '../..');
const { parseNpy, toFloat64, NpyError } = await import(path.join(root, 'signaling/web/npy.js'));

const dir = mkdtempSync(path.join(tmpdir(), 'pointcast-npy-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
execFileSync('/usr/bin/python3', [path.join(here, 'gen_npy.py'), dir], { stdio: 'inherit' });
const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
const load = (name) => readFileSync(path.join(dir, `${name}.npy`));

const decode = (v) => (typeof v === 'string' ? Number(v.replace('inf', 'Infinity')) : Number(v));

for (const [name, want] of Object.entries(manifest.good)) {
  test(`numpy file ${name} (${want.descr}, shape [${want.shape}])`, () => {
    const a = parseNpy(load(name));
    assert.deepEqual(a.shape, want.shape);
    assert.equal(a.descr, want.descr);
    assert.equal(a.data.length, want.values.length);
    const got = toFloat64(a);
    for (let k = 0; k < want.values.length; k++) {
      const w = decode(want.values[k]);
      if (Number.isNaN(w)) assert.ok(Number.isNaN(got[k]), `${name}[${k}] should be NaN`);
      else if (want.descr.endsWith('f4') || want.descr.endsWith('f2')) {
        assert.ok(Math.abs(got[k] - w) <= Math.abs(w) * 1e-6 + 1e-12, `${name}[${k}] = ${got[k]}, want ${w}`);
      } else assert.equal(got[k], w, `${name}[${k}]`);
    }
  });
}

test('64-bit integers keep their exact value as BigInt', () => {
  const a = parseNpy(load('ints_i8'));
  assert.ok(a.data instanceof BigInt64Array);
  assert.equal(a.data[0], -(2n ** 40n));
  const u = parseNpy(load('u8'));
  assert.equal(u.data[0], 2n ** 63n + 5n);
});

test('rows and cols describe an (N, 3) cloud; float32 stays a Float32Array', () => {
  const a = parseNpy(load('points_f4'));
  assert.equal(a.rows, 100);
  assert.equal(a.cols, 3);
  assert.ok(a.data instanceof Float32Array);
  const e = parseNpy(load('empty_f4'));
  assert.equal(e.rows, 0);
  assert.equal(e.data.length, 0);
});

test('format versions are reported', () => {
  assert.equal(parseNpy(load('points_f4')).version, '1.0');
  assert.equal(parseNpy(load('v2_f4')).version, '2.0');
  assert.equal(parseNpy(load('v3_f4')).version, '3.0');
});

test('a file inside a larger buffer at an odd offset parses (as from a data channel)', () => {
  const file = load('points_f8');
  const big = new Uint8Array(file.length + 3);
  big.set(file, 3);
  const a = parseNpy(big.subarray(3));
  assert.deepEqual(a.shape, [7, 3]);
  assert.deepEqual(Array.from(a.data), Array.from(parseNpy(file).data));
});

test('a 200k-row cloud parses quickly', () => {
  const file = load('large_f4');
  const t0 = performance.now();
  for (let k = 0; k < 10; k++) parseNpy(file);
  const ms = (performance.now() - t0) / 10;
  assert.ok(ms < 50, `parse took ${ms.toFixed(1)} ms`);
});

for (const [name, reason] of Object.entries(manifest.bad)) {
  test(`refuses ${name} with a clear reason`, () => {
    assert.throws(() => parseNpy(load(name)), (e) => {
      assert.ok(e instanceof NpyError, `${e}`);
      assert.ok(e.message.includes(reason), `message "${e.message}" should mention "${reason}"`);
      return true;
    });
  });
}

test('refuses things that are not bytes', () => {
  assert.throws(() => parseNpy('hello'), NpyError);
});
