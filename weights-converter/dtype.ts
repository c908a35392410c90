/**
 * Element decoding for checkpoint storages: IEEE 754 binary16 and bfloat16 by hand (Node 20 has no
 * Float16Array), float64 narrowed to float32, integers widened to int32. All byte input is
 * little-endian, as PyTorch, safetensors and '<' numpy files store it.
 */
import * as os from 'os';
import { CheckpointError } from './errors';
import { ITEM_SIZE, SourceDType } from './types';

const HOST_LE = os.endianness() === 'LE';

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 bit pattern of a binary16 bit pattern (exact: every half is a float). */
function halfBitsToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const e = (h >> 10) & 0x1f;
  let m = h & 0x3ff;
  if (e === 0) {
    if (m === 0) return sign >>> 0;
    // Subnormal m * 2^-24: normalise so the leading 1 becomes the implicit bit.
    let ex = 113;
    while ((m & 0x400) === 0) {
      m <<= 1;
      ex--;
    }
    return (sign | (ex << 23) | ((m & 0x3ff) << 13)) >>> 0;
  }
  if (e === 0x1f) return (sign | 0x7f800000 | (m << 13)) >>> 0; // inf, or NaN keeping its payload
  return (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
}

let halfTable: Uint32Array | null = null;
/** 65536-entry half→float bit table (256 KiB), built on first use. */
function getHalfTable(): Uint32Array {
  if (halfTable === null) {
    const t = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) t[h] = halfBitsToFloatBits(h);
    halfTable = t;
  }
  return halfTable;
}

/** binary16 bits → number. halfToFloat(0x3c00) === 1, halfToFloat(0x7bff) === 65504. */
export function halfToFloat(bits: number): number {
  u32Scratch[0] = halfBitsToFloatBits(bits & 0xffff);
  return f32Scratch[0];
}

/** bfloat16 bits → number (the high half of a float32). bfloat16ToFloat(0x3f80) === 1. */
export function bfloat16ToFloat(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0];
}

/**
 * number → binary16 bits, rounding to nearest, ties to even (after first rounding to float32).
 * Overflow gives ±inf, underflow ±0 or a subnormal; NaN stays a (quiet) NaN.
 */
export function floatToHalf(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const e = (x >>> 23) & 0xff;
  let m = x & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m !== 0 ? 0x200 | (m >>> 13) : 0);
  const E = e - 112; // rebiased exponent: 127 - 15
  if (E >= 0x1f) return sign | 0x7c00;
  if (E <= 0) {
    if (E < -10) return sign;
    m |= 0x800000;
    const shift = 14 - E;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h; // a carry into 0x400 is exactly the smallest normal
  }
  let h = (E << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry may reach inf: correct
  return sign | h;
}

/** number → bfloat16 bits, rounding to nearest, ties to even; NaN stays a quiet NaN. */
export function floatToBfloat16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** A copy of `bytes` starting at a multiple of `align` bytes (or `bytes` itself when it already is). */
function alignedBytes(bytes: Uint8Array, align: number): Uint8Array {
  if (bytes.byteOffset % align === 0) return bytes;
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy;
}

function readU16Array(bytes: Uint8Array, n: number): Uint16Array {
  if (HOST_LE) {
    const b = alignedBytes(bytes, 2);
    return new Uint16Array(b.buffer, b.byteOffset, n);
  }
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = bytes[2 * i] | (bytes[2 * i + 1] << 8);
  return out;
}

/** Decode little-endian binary16 elements to float32. */
export function decodeFloat16(bytes: Uint8Array): Float32Array {
  const n = bytes.length >>> 1;
  const src = readU16Array(bytes, n);
  const table = getHalfTable();
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) bits[i] = table[src[i]];
  return out;
}

/** Decode little-endian bfloat16 elements to float32. */
export function decodeBFloat16(bytes: Uint8Array): Float32Array {
  const n = bytes.length >>> 1;
  const src = readU16Array(bytes, n);
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
  return out;
}

/** Encode float32 values as binary16 bits (round to nearest even). */
export function encodeFloat16(data: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = floatToHalf(data[i]);
  return out;
}

/** Encode float32 values as bfloat16 bits (round to nearest even). */
export function encodeBFloat16(data: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = floatToBfloat16(data[i]);
  return out;
}

/** True for float32, float16, bfloat16 and float64. */
export function isFloatDType(dtype: SourceDType): boolean {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16' || dtype === 'float64';
}

/**
 * Decode little-endian elements of `dtype` to the RawTensor array type: floats to Float32Array, ints
 * to Int32Array (int64 outside the int32 range throws a CheckpointError), bool to Uint8Array of 0/1.
 * `bytes.length` must be a multiple of the item size. A float32 result may share memory with `bytes`.
 */
export function decodeElements(bytes: Uint8Array, dtype: SourceDType, file = '<buffer>'): Float32Array | Int32Array | Uint8Array {
  const size = ITEM_SIZE[dtype];
  if (size === undefined) throw new CheckpointError(file, `unsupported dtype '${String(dtype)}'`);
  if (bytes.length % size !== 0) {
    throw new CheckpointError(file, `${bytes.length} bytes is not a whole number of ${dtype} elements`);
  }
  const n = bytes.length / size;
  switch (dtype) {
    case 'float32': {
      if (HOST_LE) {
        const b = alignedBytes(bytes, 4);
        return new Float32Array(b.buffer, b.byteOffset, n);
      }
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    }
    case 'float16':
      return decodeFloat16(bytes);
    case 'bfloat16':
      return decodeBFloat16(bytes);
    case 'float64': {
      const out = new Float32Array(n);
      if (HOST_LE) {
        const b = alignedBytes(bytes, 8);
        out.set(new Float64Array(b.buffer, b.byteOffset, n));
      } else {
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
        for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      }
      return out;
    }
    case 'int64': {
      const out = new Int32Array(n);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      for (let i = 0; i < n; i++) {
        const lo = dv.getInt32(8 * i, true);
        const hi = dv.getInt32(8 * i + 4, true);
        if (hi !== lo >> 31) {
          const v = dv.getBigInt64(8 * i, true);
          throw new CheckpointError(file, `int64 value ${v} at element ${i} does not fit in int32`);
        }
        out[i] = lo;
      }
      return out;
    }
    case 'int32': {
      if (HOST_LE) {
        const b = alignedBytes(bytes, 4);
        return new Int32Array(b.buffer, b.byteOffset, n).slice();
      }
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return out;
    }
    case 'int16': {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true);
      return out;
    }
    case 'int8': {
      const out = new Int32Array(n);
      out.set(new Int8Array(bytes.buffer, bytes.byteOffset, n));
      return out;
    }
    case 'uint8': {
      const out = new Int32Array(n);
      out.set(bytes);
      return out;
    }
    case 'bool': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = bytes[i] !== 0 ? 1 : 0;
      return out;
    }
  }
}
