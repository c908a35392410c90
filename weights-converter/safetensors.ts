/**
 * safetensors (huggingface/safetensors format spec): an 8-byte little-endian header length N, a JSON
 * header of N bytes mapping tensor names to {dtype, shape, data_offsets: [begin, end]} (offsets
 * relative to the data area) plus an optional "__metadata__" string map, then the data area.
 * Validation follows the Rust reference: N bounded, entries sized numel * itemsize, and the entries,
 * sorted by offset, covering the data area exactly, without gaps or overlaps.
 */
import * as fs from 'fs';
import { CheckpointError } from './errors';
import { decodeElements, encodeBFloat16, encodeFloat16 } from './dtype';
import { openRegularFile, readExactly } from './source';
import { ITEM_SIZE, RawTensor, SourceDType } from './types';
import { writeFileAtomic } from '../src/util/fs';

/**
 * The first key that appears twice among the top-level keys of a JSON object text (already known to
 * parse), or null. A scan of strings at depth 1, as safetensors' serde parser rejects duplicates.
 */
export function duplicateTopLevelKey(text: string): string | null {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1) {
        let k = j + 1;
        while (k < text.length && /\s/.test(text[k])) k++;
        if (text[k] === ':') {
          const key = JSON.parse(text.slice(i, j + 1)) as string;
          if (seen.has(key)) return key;
          seen.add(key);
        }
      }
      i = j;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return null;
}

/** Largest header accepted (the Rust reference uses the same 100 MB bound). */
export const MAX_HEADER_BYTES = 100_000_000;

const DTYPES: Readonly<Record<string, SourceDType>> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};

/** One tensor of a safetensors header; begin/end are absolute file offsets. */
export interface SafetensorsEntry {
  name: string;
  dtype: SourceDType;
  shape: number[];
  begin: number;
  end: number;
}

/** A parsed and validated safetensors header. */
export interface SafetensorsHeader {
  /** Entries in data order. */
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** File offset of the data area (8 + N). */
  dataStart: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parse and validate the header of an open file. */
export function parseSafetensorsHeader(fd: number, fileSize: number, file: string): SafetensorsHeader {
  const fail = (reason: string): never => {
    throw new CheckpointError(file, reason);
  };
  if (fileSize < 8) fail(`truncated safetensors file: ${fileSize} bytes, less than the 8-byte header length`);
  const lenBuf = readExactly(fd, 0, 8, file, 'safetensors header length');
  const n = lenBuf.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(`safetensors header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n > BigInt(fileSize - 8)) fail(`truncated safetensors file: header length ${n} but only ${fileSize - 8} bytes follow`);
  const headerLen = Number(n);
  const text = readExactly(fd, 8, headerLen, file, 'safetensors header').toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`safetensors header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isRecord(json)) return fail('safetensors header is not a JSON object');
  const dup = duplicateTopLevelKey(text);
  if (dup !== null) fail(`safetensors header names '${dup}' twice (JSON.parse would keep the last; safetensors' own parser refuses it)`);
  const dataStart = 8 + headerLen;
  const dataSize = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, v] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isRecord(v)) fail('safetensors __metadata__ is not an object');
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== 'string') fail(`safetensors __metadata__ value '${k}' is not a string`);
        metadata[k] = s as string;
      }
      continue;
    }
    if (!isRecord(v)) return fail(`safetensors entry '${name}' is not an object`);
    const code = v.dtype;
    if (typeof code !== 'string') return fail(`safetensors entry '${name}' has no dtype`);
    const dtype = DTYPES[code];
    if (dtype === undefined) return fail(`safetensors entry '${name}' has unsupported dtype '${code}'`);
    const shape = v.shape;
    if (!Array.isArray(shape) || shape.length > 32 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      return fail(`safetensors entry '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    }
    const offs = v.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1]) {
      return fail(`safetensors entry '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [b, e] = offs as [number, number];
    if (e > dataSize) {
      fail(`safetensors entry '${name}' data_offsets [${b}, ${e}] extend past the ${dataSize}-byte data area`);
    }
    let numel = 1;
    for (const d of shape as number[]) numel *= d;
    const expected = numel * ITEM_SIZE[dtype];
    if (e - b !== expected) {
      fail(`safetensors entry '${name}' spans ${e - b} bytes but shape [${(shape as number[]).join(', ')}] of ${code} needs ${expected}`);
    }
    entries.push({ name, dtype, shape: shape as number[], begin: b, end: e });
  }
  entries.sort((x, y) => x.begin - y.begin || x.end - y.end);
  let pos = 0;
  let prev = '';
  for (const en of entries) {
    if (en.begin < pos) fail(`safetensors entries '${prev}' and '${en.name}' overlap`);
    if (en.begin > pos) fail(`safetensors data area has a gap before '${en.name}' (bytes ${pos} to ${en.begin} unused)`);
    pos = en.end;
    prev = en.name;
  }
  if (pos !== dataSize) fail(`safetensors data area is ${dataSize} bytes but the tensors cover ${pos}`);
  for (const en of entries) {
    en.begin += dataStart;
    en.end += dataStart;
  }
  return { entries, metadata, dataStart };
}

/** Read only the header of a safetensors file (names, dtypes, shapes, metadata). */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const f = openRegularFile(file, 'a safetensors file');
  try {
    return parseSafetensorsHeader(f.fd, f.size, file);
  } finally {
    f.close();
  }
}

/** Read every tensor of a safetensors file, in data order. */
export function readSafetensors(file: string): { tensors: Map<string, RawTensor>; metadata: Record<string, string> } {
  const f = openRegularFile(file, 'a safetensors file');
  const fd = f.fd;
  try {
    const header = parseSafetensorsHeader(fd, f.size, file);
    const tensors = new Map<string, RawTensor>();
    for (const e of header.entries) {
      const bytes = new Uint8Array(readExactly(fd, e.begin, e.end - e.begin, file, `tensor '${e.name}'`));
      let data: RawTensor['data'];
      try {
        data = decodeElements(bytes, e.dtype, file);
      } catch (err) {
        if (err instanceof CheckpointError) throw new CheckpointError(file, `tensor '${e.name}': ${err.reason}`);
        throw err;
      }
      tensors.set(e.name, { shape: e.shape, dtype: e.dtype, data });
    }
    return { tensors, metadata: header.metadata };
  } finally {
    f.close();
  }
}

/** Storage dtype of writeSafetensors. */
export type SafetensorsWriteDType = 'F32' | 'F16' | 'BF16';

/** Tensors to write: C-order float32 data and its shape. */
export interface WritableTensor {
  shape: number[];
  data: Float32Array;
}

/**
 * Write float tensors as a safetensors file, atomically (a temporary file in the same directory,
 * then rename). `opts.dtype` stores them as F32 (default), F16 or BF16 (round to nearest even).
 */
export function writeSafetensors(
  file: string,
  tensors: Map<string, WritableTensor>,
  metadata?: Record<string, string>,
  opts: { dtype?: SafetensorsWriteDType } = {},
): void {
  const code = opts.dtype ?? 'F32';
  if (!(code in { F32: 1, F16: 1, BF16: 1 })) throw new CheckpointError(file, `cannot write dtype '${code}' (use F32, F16 or BF16)`);
  const item = code === 'F32' ? 4 : 2;
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new CheckpointError(file, "'__metadata__' is not a valid tensor name");
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || numel !== t.data.length) {
      throw new CheckpointError(file, `tensor '${name}' has shape [${t.shape.join(', ')}] but ${t.data.length} values`);
    }
    header[name] = { dtype: code, shape: t.shape, data_offsets: [offset, offset + numel * item] };
    offset += numel * item;
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new CheckpointError(file, `metadata '${k}' must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(json.length));

  writeFileAtomic(file, (fd) => {
    fs.writeSync(fd, lenBuf);
    fs.writeSync(fd, json);
    for (const t of tensors.values()) {
      let bytes: Uint8Array;
      if (code === 'F32') {
        bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        if (!HOST_LE) bytes = toLittleEndian32(t.data);
      } else {
        const h = code === 'F16' ? encodeFloat16(t.data) : encodeBFloat16(t.data);
        bytes = HOST_LE ? new Uint8Array(h.buffer, h.byteOffset, h.byteLength) : toLittleEndian16(h);
      }
      for (let p = 0; p < bytes.length;) p += fs.writeSync(fd, bytes, p, Math.min(bytes.length - p, 1 << 30));
    }
  });
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function toLittleEndian32(a: Float32Array): Uint8Array {
  const out = new Uint8Array(a.length * 4);
  const dv = new DataView(out.buffer);
  a.forEach((v, i) => dv.setFloat32(4 * i, v, true));
  return out;
}

function toLittleEndian16(a: Uint16Array): Uint8Array {
  const out = new Uint8Array(a.length * 2);
  const dv = new DataView(out.buffer);
  a.forEach((v, i) => dv.setUint16(2 * i, v, true));
  return out;
}
