// SPDX-License-Identifier: LGPL-2.1-or-later
// npy.js — parse NumPy .npy files (format versions 1.0, 2.0 and 3.0) in the browser or in node.
//
//   import { parseNpy } from './npy.js';
//   const a = parseNpy(arrayBuffer);   // { shape: [N, 3], descr: '<f4', data: Float32Array, ... }
//
// Supported: the numeric dtypes numpy writes (bool, int8..int64, uint8..uint64, float16/32/64,
// either byte order), C or Fortran order, 0-D, 1-D and 2-D arrays. `data` is always C order in
// the platform's byte order; 64-bit integers come as BigInt64Array/BigUint64Array (use
// toFloat64() for plain numbers). Anything else throws NpyError with the reason.

export class NpyError extends Error {
  constructor(message) {
    super(message);
    this.name = 'NpyError';
  }
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

// kind+size -> [TypedArray constructor, DataView getter name, human name]
const DTYPES = {
  b1: [Uint8Array, 'getUint8', 'bool'],
  i1: [Int8Array, 'getInt8', 'int8'],
  u1: [Uint8Array, 'getUint8', 'uint8'],
  i2: [Int16Array, 'getInt16', 'int16'],
  u2: [Uint16Array, 'getUint16', 'uint16'],
  i4: [Int32Array, 'getInt32', 'int32'],
  u4: [Uint32Array, 'getUint32', 'uint32'],
  i8: [BigInt64Array, 'getBigInt64', 'int64'],
  u8: [BigUint64Array, 'getBigUint64', 'uint64'],
  f2: [Float32Array, null, 'float16'], // widened to float32
  f4: [Float32Array, 'getFloat32', 'float32'],
  f8: [Float64Array, 'getFloat64', 'float64'],
};

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function toBytes(input) {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new NpyError('expected an ArrayBuffer or a typed array');
}

// A small parser for the Python literal numpy writes as the header: a dict of str keys whose
// values are strings, True/False, or tuples of ints (lists appear for structured dtypes).
function parseLiteral(text) {
  let i = 0;
  const fail = (what) => {
    throw new NpyError(`bad header: ${what} at offset ${i} in ${JSON.stringify(text.trim())}`);
  };
  const ws = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail('unterminated string');
      const s = text.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    if (c === '{') return container('{', '}', true);
    if (c === '(') return container('(', ')', false);
    if (c === '[') return container('[', ']', false);
    const m = /^(True|False|None|-?\d+L?)/.exec(text.slice(i));
    if (!m) fail('unexpected character');
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return Number.parseInt(m[0], 10);
  };
  const container = (open, close, isDict) => {
    i++; // open
    const out = isDict ? {} : [];
    for (;;) {
      ws();
      if (text[i] === close) {
        i++;
        return out;
      }
      if (isDict) {
        const k = value();
        if (typeof k !== 'string') fail('dict key is not a string');
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        out[k] = value();
      } else {
        out.push(value());
      }
      ws();
      if (text[i] === ',') i++;
      else if (text[i] !== close) fail(`expected ',' or '${close}'`);
    }
  };
  const v = value();
  ws();
  if (i !== text.length) fail('trailing characters');
  return v;
}

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Parses one .npy file. Throws NpyError with the reason when it cannot. */
export function parseNpy(input) {
  const bytes = toBytes(input);
  if (bytes.length < 10) throw new NpyError(`too short for an .npy file (${bytes.length} bytes)`);
  for (let k = 0; k < MAGIC.length; k++) {
    if (bytes[k] !== MAGIC[k]) throw new NpyError('not an .npy file (bad magic, expected \\x93NUMPY)');
  }
  const major = bytes[6];
  const minor = bytes[7];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen;
  let headerStart;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new NpyError('too short for an .npy version 2/3 header');
    headerLen = dv.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new NpyError(`unsupported .npy format version ${major}.${minor} (1.0, 2.0 and 3.0 are known)`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) {
    throw new NpyError(`header length ${headerLen} runs past the end of the file (${bytes.length} bytes)`);
  }
  const headerBytes = bytes.subarray(headerStart, dataStart);
  const headerText = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(headerBytes);
  const header = parseLiteral(headerText);
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new NpyError('bad header: not a dict');
  }
  for (const key of ['descr', 'fortran_order', 'shape']) {
    if (!(key in header)) throw new NpyError(`bad header: missing '${key}'`);
  }
  const { descr, fortran_order: fortran, shape } = header;
  if (typeof descr !== 'string') {
    throw new NpyError('structured arrays (record dtypes) are not supported');
  }
  if (typeof fortran !== 'boolean') throw new NpyError("bad header: 'fortran_order' is not True/False");
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new NpyError("bad header: 'shape' is not a tuple of non-negative ints");
  }
  if (shape.length > 2) {
    throw new NpyError(`${shape.length}-D arrays are not supported (shape (${shape.join(', ')})); 0-D, 1-D and 2-D are`);
  }
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  if (!m) {
    if (/^[<>|=]?O/.test(descr)) throw new NpyError('object arrays (pickled) are not supported');
    throw new NpyError(`unsupported dtype '${descr}'`);
  }
  const [, order, kind, sizeText] = m;
  const size = Number(sizeText);
  const spec = DTYPES[kind + size];
  if (!spec) throw new NpyError(`unsupported dtype '${descr}' (numeric dtypes only)`);
  const [Ctor, getter, name] = spec;
  // '|' and '=' mean byte order does not apply / native: numpy only writes '|' for 1-byte types.
  const little = order === '<' || order === '|' || (order === '=' && LITTLE_ENDIAN_HOST);

  const count = shape.reduce((a, b) => a * b, 1);
  const nbytes = count * size;
  const available = bytes.length - dataStart;
  if (available < nbytes) {
    throw new NpyError(`truncated data: shape (${shape.join(', ')}) of ${descr} needs ${nbytes} bytes, got ${available}`);
  }
  if (available > nbytes) {
    throw new NpyError(`${available - nbytes} unexpected bytes after the data of shape (${shape.join(', ')})`);
  }

  let data;
  if (kind === 'f' && size === 2) {
    data = new Float32Array(count);
    for (let k = 0; k < count; k++) data[k] = halfToFloat(dv.getUint16(dataStart + 2 * k, little));
  } else if (size === 1 || little === LITTLE_ENDIAN_HOST) {
    // Same byte order: copy the bytes (a copy also fixes any misalignment of the source).
    const copy = new Uint8Array(nbytes);
    copy.set(bytes.subarray(dataStart, dataStart + nbytes));
    data = new Ctor(copy.buffer, 0, count);
  } else {
    data = new Ctor(count);
    for (let k = 0; k < count; k++) data[k] = dv[getter](dataStart + size * k, little);
  }
  if (fortran && shape.length === 2) {
    // Column-major on disk: transpose into row-major.
    const [rows, cols] = shape;
    const c = new Ctor(count);
    for (let r = 0; r < rows; r++) for (let col = 0; col < cols; col++) c[r * cols + col] = data[col * rows + r];
    data = c;
  }
  return {
    version: `${major}.${minor}`,
    descr,
    dtype: name,
    shape,
    fortranOrder: fortran,
    data,
    rows: shape.length === 0 ? 1 : shape[0],
    cols: shape.length === 2 ? shape[1] : 1,
  };
}

/** Values of a parsed array as a Float64Array (BigInts converted to Number). */
export function toFloat64(arr) {
  const out = new Float64Array(arr.data.length);
  for (let k = 0; k < out.length; k++) out[k] = Number(arr.data[k]);
  return out;
}
