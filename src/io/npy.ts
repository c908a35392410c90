/**
 * NumPy .npy files (numpy/lib/format.py, format versions 1.0, 2.0 and 3.0): read the common numeric
 * dtypes in either byte order and either memory order, and write float32 C-order arrays the way
 * numpy does (version 1.0, header padded so the data starts at a multiple of 64 bytes).
 *
 *   const { shape, data } = readNpyFloat32('logits.npy');   // data: Float32Array, C order
 *   writeNpy('out.npy', { shape: [2, 3], data: new Float32Array(6) });
 */
import * as fs from 'fs';
import { NpyError } from '../errors';
import { stridedGather } from '../util/ndarray';
import { writeFileAtomic } from '../util/fs';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const MAX_HEADER = 1 << 24;

/** Element arrays readNpy returns, by dtype. */
export type NpyData = Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array;

/** A decoded array: C-order data whatever the file's order. */
export interface NpyArray {
  shape: number[];
  /**
   * numpy dtype name: 'float32', 'float64', 'float16' (decoded to Float32Array), 'int8', 'int16',
   * 'int32', 'int64' (decoded to Int32Array; values outside int32 are an error), 'uint8', 'uint16',
   * 'uint32', 'bool' (Uint8Array of 0/1).
   */
  dtype: string;
  data: NpyData;
}

interface DTypeInfo {
  name: string;
  size: number;
}

const KINDS: Readonly<Record<string, DTypeInfo>> = {
  f2: { name: 'float16', size: 2 },
  f4: { name: 'float32', size: 4 },
  f8: { name: 'float64', size: 8 },
  i1: { name: 'int8', size: 1 },
  i2: { name: 'int16', size: 2 },
  i4: { name: 'int32', size: 4 },
  i8: { name: 'int64', size: 8 },
  u1: { name: 'uint8', size: 1 },
  u2: { name: 'uint16', size: 2 },
  u4: { name: 'uint32', size: 4 },
  b1: { name: 'bool', size: 1 },
};

type PyLit = string | number | boolean | null | PyLit[] | { [k: string]: PyLit };

/** Parse the Python literal of a .npy header: a dict of str, bool, int and tuples. No eval. */
function parseHeader(text: string, where: string): Record<string, PyLit> {
  let i = 0;
  const fail = (msg: string): never => {
    throw new NpyError(`${where}: malformed header (${msg} at character ${i}): ${text.trim().slice(0, 200)}`);
  };
  const ws = (): void => {
    while (i < text.length && ' \t\r\n'.includes(text[i])) i++;
  };
  const value = (depth: number): PyLit => {
    if (depth > 8) fail('nesting too deep');
    ws();
    const c = text[i];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail('unterminated string');
      const s = text.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    if (c === '{' || c === '(' || c === '[') {
      const close = c === '{' ? '}' : c === '(' ? ')' : ']';
      i++;
      const items: PyLit[] = [];
      const dict: { [k: string]: PyLit } = {};
      for (;;) {
        ws();
        if (text[i] === close) {
          i++;
          break;
        }
        const v = value(depth + 1);
        if (c === '{') {
          ws();
          if (text[i] !== ':' || typeof v !== 'string') fail('expected a string key and ":"');
          i++;
          dict[v as string] = value(depth + 1);
        } else {
          items.push(v);
        }
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== close) fail(`expected "," or "${close}"`);
      }
      return c === '{' ? dict : items;
    }
    const m = /^(True|False|None|-?\d+L?)/.exec(text.slice(i, i + 32));
    if (m === null) return fail('unexpected token');
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return Number(m[0].replace('L', ''));
  };
  const v = value(0);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('header is not a dict');
  return v as Record<string, PyLit>;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m === 0 ? s * Infinity : NaN;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Decode `count` elements of kind `code` from `bytes` (at `off`) in the given byte order. */
function decode(buf: Buffer, off: number, count: number, code: string, little: boolean, where: string): NpyData {
  const dv = new DataView(buf.buffer, buf.byteOffset + off, count * KINDS[code].size);
  switch (code) {
    case 'f4': {
      const out = new Float32Array(count);
      for (let k = 0; k < count; k++) out[k] = dv.getFloat32(4 * k, little);
      return out;
    }
    case 'f8': {
      const out = new Float64Array(count);
      for (let k = 0; k < count; k++) out[k] = dv.getFloat64(8 * k, little);
      return out;
    }
    case 'f2': {
      const out = new Float32Array(count);
      for (let k = 0; k < count; k++) out[k] = halfToFloat(dv.getUint16(2 * k, little));
      return out;
    }
    case 'i1':
      return new Int8Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + count));
    case 'u1':
      return new Uint8Array(buf.subarray(off, off + count));
    case 'b1': {
      const out = new Uint8Array(count);
      for (let k = 0; k < count; k++) out[k] = buf[off + k] !== 0 ? 1 : 0;
      return out;
    }
    case 'i2': {
      const out = new Int16Array(count);
      for (let k = 0; k < count; k++) out[k] = dv.getInt16(2 * k, little);
      return out;
    }
    case 'u2': {
      const out = new Uint16Array(count);
      for (let k = 0; k < count; k++) out[k] = dv.getUint16(2 * k, little);
      return out;
    }
    case 'i4': {
      const out = new Int32Array(count);
      for (let k = 0; k < count; k++) out[k] = dv.getInt32(4 * k, little);
      return out;
    }
    case 'u4': {
      const out = new Uint32Array(count);
      for (let k = 0; k < count; k++) out[k] = dv.getUint32(4 * k, little);
      return out;
    }
    case 'i8': {
      const out = new Int32Array(count);
      for (let k = 0; k < count; k++) {
        const v = dv.getBigInt64(8 * k, little);
        if (v < -2147483648n || v > 2147483647n) throw new NpyError(`${where}: int64 value ${v} at element ${k} does not fit in int32`);
        out[k] = Number(v);
      }
      return out;
    }
  }
  throw new NpyError(`${where}: unsupported dtype '${code}'`);
}

/** Fortran (column-major) order to C order. */
function fortranToC<T extends NpyData>(src: T, shape: number[]): T {
  if (shape.length < 2) return src;
  // Fortran strides: the first axis varies fastest.
  const strides = shape.map((_, d) => shape.slice(0, d).reduce((a, b) => a * b, 1));
  return stridedGather(src, shape, strides);
}

/** Read a .npy file (a path or its bytes) into C-order data. Throws NpyError on any malformed input. */
export function readNpy(input: Buffer | Uint8Array | string): NpyArray {
  const where = typeof input === 'string' ? input : '<npy buffer>';
  let buf: Buffer;
  if (typeof input === 'string') {
    try {
      buf = fs.readFileSync(input);
    } catch (e) {
      throw new NpyError(`${where}: cannot read: ${(e as Error).message}`);
    }
  } else {
    buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.length);
  }
  if (buf.length < 10 || !MAGIC.every((b, k) => buf[k] === b)) throw new NpyError(`${where}: not a .npy file (bad magic)`);
  const major = buf[6];
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new NpyError(`${where}: truncated header`);
    headerLen = buf.readUInt32LE(8);
    headerStart = 12;
  } else {
    throw new NpyError(`${where}: unsupported .npy format version ${major}.${buf[7]}`);
  }
  if (headerLen > MAX_HEADER || headerStart + headerLen > buf.length) {
    throw new NpyError(`${where}: truncated header (${headerLen} bytes declared, ${buf.length - headerStart} present)`);
  }
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', headerStart, headerStart + headerLen);
  const h = parseHeader(header, where);
  const descr = h.descr;
  const fortran = h.fortran_order;
  const shapeV = h.shape;
  if (typeof descr !== 'string') throw new NpyError(`${where}: unsupported dtype ${JSON.stringify(descr)} (structured arrays are not supported)`);
  if (typeof fortran !== 'boolean') throw new NpyError(`${where}: header lacks fortran_order`);
  if (!Array.isArray(shapeV) || !shapeV.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw new NpyError(`${where}: invalid shape ${JSON.stringify(shapeV)}`);
  }
  const shape = shapeV as number[];
  const m = /^([<>|=])([a-z]\d+)$/.exec(descr);
  const kind = m === null ? undefined : KINDS[m[2]];
  if (m === null || kind === undefined) throw new NpyError(`${where}: unsupported dtype '${descr}'`);
  const order = m[1];
  if (order === '|' && kind.size > 1) throw new NpyError(`${where}: unsupported dtype '${descr}'`);
  const little = order !== '>';
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = headerStart + headerLen;
  const need = count * kind.size;
  if (!Number.isSafeInteger(need) || dataStart + need > buf.length) {
    throw new NpyError(`${where}: truncated data (${need} bytes needed for shape [${shape.join(', ')}] ${descr}, ${buf.length - dataStart} present)`);
  }
  let data = decode(buf, dataStart, count, m[2], little, where);
  if (fortran) data = fortranToC(data, shape);
  return { shape, dtype: kind.name, data };
}

/** Read a .npy file and convert any numeric dtype to float32. */
export function readNpyFloat32(input: Buffer | Uint8Array | string): { shape: number[]; data: Float32Array } {
  const a = readNpy(input);
  return { shape: a.shape, data: a.data instanceof Float32Array ? a.data : Float32Array.from(a.data) };
}

/** Arrays writeNpy accepts, and the descr each is written as. */
export type NpyWritable = Float32Array | Float64Array | Int32Array | Uint8Array;

function descrOf(data: NpyWritable): string {
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof Float64Array) return '<f8';
  if (data instanceof Int32Array) return '<i4';
  return '|u1';
}

/**
 * Encode a C-order array as .npy bytes: version 1.0 (2.0 if the header needs it), '<f4' for a
 * Float32Array, the header padded with spaces and a newline so the data starts at a multiple of 64.
 */
export function encodeNpy(arr: { shape: number[]; data: NpyWritable }): Buffer {
  const { shape, data } = arr;
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || shape.reduce((a, b) => a * b, 1) !== data.length) {
    throw new NpyError(`writeNpy: shape [${shape.join(', ')}] does not match ${data.length} values`);
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descrOf(data)}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let version = 1;
  let prefix = 10;
  let total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  if (total - prefix > 0xffff) {
    version = 2;
    prefix = 12;
    total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  }
  const headerLen = total - prefix;
  const head = Buffer.alloc(total, 0x20);
  Buffer.from(MAGIC).copy(head, 0);
  head[6] = version;
  head[7] = 0;
  if (version === 1) head.writeUInt16LE(headerLen, 8);
  else head.writeUInt32LE(headerLen, 8);
  head.write(dict, prefix, 'latin1');
  head[total - 1] = 0x0a;
  const body = Buffer.alloc(data.byteLength);
  const dv = new DataView(body.buffer, body.byteOffset, body.length);
  if (data instanceof Float32Array) data.forEach((v, k) => dv.setFloat32(4 * k, v, true));
  else if (data instanceof Float64Array) data.forEach((v, k) => dv.setFloat64(8 * k, v, true));
  else if (data instanceof Int32Array) data.forEach((v, k) => dv.setInt32(4 * k, v, true));
  else body.set(data);
  return Buffer.concat([head, body]);
}

/** Write a C-order array as .npy, atomically (writeFileAtomic). */
export function writeNpy(file: string, arr: { shape: number[]; data: NpyWritable }): void {
  writeFileAtomic(file, encodeNpy(arr));
}
