/**
 * Test helpers for the checkpoint readers: fixture paths and expected values (written by
 * test/fixtures/checkpoints/make_checkpoint_fixtures.py with PyTorch), a zip writer (stored or
 * deflated entries, optional ZIP64 records) to build hostile archives, a tiny pickle assembler, and
 * a HandlerContext for calling allowlist handlers directly.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { expect } from 'chai';
import { CheckpointError } from '../../weights-converter/errors';
import { HandlerContext, PyFloat } from '../../weights-converter/pickle/values';
import { RawTensor } from '../../weights-converter/types';
import { ZipReader, crc32 } from '../../weights-converter/zip';

export const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/checkpoints');

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

export interface ExpectedTensor {
  shape: number[];
  dtype: string;
  values: (number | string)[];
}

export interface ExpectedCheckpoint {
  format: string;
  wrapper: string | null;
  otherKeys: string[];
  metadata?: Record<string, string>;
  tensors: Record<string, ExpectedTensor>;
  emaTensors?: Record<string, ExpectedTensor>;
}

export function loadExpected(): Record<string, ExpectedCheckpoint> {
  return JSON.parse(fs.readFileSync(fixture('expected.json'), 'utf8')) as Record<string, ExpectedCheckpoint>;
}

function num(v: number | string): number {
  if (v === 'nan') return NaN;
  if (v === 'inf') return Infinity;
  if (v === '-inf') return -Infinity;
  return v as number;
}

/** Exact comparison (floats were converted to float32 by PyTorch; -0 and NaN included). */
export function expectTensor(name: string, actual: RawTensor | undefined, exp: ExpectedTensor): void {
  expect(actual, `tensor '${name}' present`).to.not.equal(undefined);
  const t = actual as RawTensor;
  expect(t.shape, `${name} shape`).to.deep.equal(exp.shape);
  expect(t.dtype, `${name} dtype`).to.equal(exp.dtype);
  const isFloat = ['float32', 'float16', 'bfloat16', 'float64'].includes(exp.dtype);
  const ctor = exp.dtype === 'bool' ? Uint8Array : isFloat ? Float32Array : Int32Array;
  expect(t.data, `${name} array type`).to.be.instanceOf(ctor);
  expect(t.data.length, `${name} length`).to.equal(exp.values.length);
  for (let i = 0; i < exp.values.length; i++) {
    const want = num(exp.values[i]);
    const got = t.data[i];
    if (Number.isNaN(want)) expect(Number.isNaN(got), `${name}[${i}] is NaN`).to.equal(true);
    else expect(Object.is(got, want) || got === want, `${name}[${i}]: got ${got}, want ${want}`).to.equal(true);
    if (Object.is(want, -0)) expect(Object.is(got, -0), `${name}[${i}] is -0`).to.equal(true);
  }
}

export function expectTensors(actual: Map<string, RawTensor>, exp: Record<string, ExpectedTensor>): void {
  expect([...actual.keys()].sort()).to.deep.equal(Object.keys(exp).sort());
  for (const [name, e] of Object.entries(exp)) expectTensor(name, actual.get(name), e);
}

/** Assert that `fn` throws a CheckpointError whose message matches `re`; returns it. */
export function expectCheckpointError(fn: () => unknown, re: RegExp): CheckpointError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a CheckpointError matching ${re}`).to.be.instanceOf(CheckpointError);
  expect((caught as Error).message).to.match(re);
  return caught as CheckpointError;
}

export async function expectCheckpointErrorAsync(p: Promise<unknown>, re: RegExp): Promise<CheckpointError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a CheckpointError matching ${re}`).to.be.instanceOf(CheckpointError);
  expect((caught as Error).message).to.match(re);
  return caught as CheckpointError;
}

/** A fresh temporary directory, removed by the returned cleanup function. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-wc-'));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A scratch directory for the enclosing describe(): made before its tests, removed after them. */
export interface TempFiles {
  /** The directory (valid inside tests and hooks). */
  readonly dir: string;
  /** Write `bytes` to `name` (default: a fresh `f<n>.pth`) in the directory; returns the path. */
  put(bytes: Uint8Array, name?: string): string;
}

/** Registers before/after hooks around the enclosing describe() and returns its TempFiles. */
export function useTempDir(): TempFiles {
  let tmp: { dir: string; cleanup: () => void } | undefined;
  let n = 0;
  before(() => {
    tmp = tempDir();
  });
  after(() => tmp?.cleanup());
  const dir = (): string => {
    if (tmp === undefined) throw new Error('useTempDir: the directory exists only inside tests and hooks');
    return tmp.dir;
  };
  return {
    get dir() {
      return dir();
    },
    put(bytes, name = `f${n++}.pth`) {
      const file = path.join(dir(), name);
      fs.writeFileSync(file, bytes);
      return file;
    },
  };
}

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ZipInput {
  name: string;
  data: Uint8Array;
  /** 0 stored (default), 8 deflate, or any number to write as is (data then stored raw). */
  method?: number;
  /** Override the CRC written (to fake a corrupt entry). */
  crc?: number;
  flags?: number;
}

/** The entries of an archive (e.g. a fixture), to rebuild it with changes through buildZip. */
export function entriesOf(file: string): ZipInput[] {
  const zip = ZipReader.open(file);
  try {
    return zip.names().map((name) => ({ name, data: zip.read(name) }));
  } finally {
    zip.close();
  }
}

/** Build a zip archive in memory. `zip64` writes ZIP64 extra fields, EOCD record and locator. */
export function buildZip(entries: ZipInput[], opts: { zip64?: boolean; comment?: string } = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const method = e.method ?? 0;
    const body = method === 8 ? zlib.deflateRawSync(e.data) : Buffer.from(e.data);
    const crc = e.crc ?? crc32(e.data);
    const name = Buffer.from(e.name, 'utf8');
    const z64 = opts.zip64 === true;
    const extraLocal = z64 ? Buffer.alloc(20) : Buffer.alloc(0);
    if (z64) {
      extraLocal.writeUInt16LE(1, 0);
      extraLocal.writeUInt16LE(16, 2);
      extraLocal.writeBigUInt64LE(BigInt(e.data.length), 4);
      extraLocal.writeBigUInt64LE(BigInt(body.length), 12);
    }
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(z64 ? 45 : 20, 4);
    local.writeUInt16LE(e.flags ?? 0x800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(z64 ? 0xffffffff : body.length, 18);
    local.writeUInt32LE(z64 ? 0xffffffff : e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extraLocal.length, 28);
    parts.push(local, name, extraLocal, body);

    const extraCentral = z64 ? Buffer.alloc(28) : Buffer.alloc(0);
    if (z64) {
      extraCentral.writeUInt16LE(1, 0);
      extraCentral.writeUInt16LE(24, 2);
      extraCentral.writeBigUInt64LE(BigInt(e.data.length), 4);
      extraCentral.writeBigUInt64LE(BigInt(body.length), 12);
      extraCentral.writeBigUInt64LE(BigInt(offset), 20);
    }
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(z64 ? 45 : 20, 4);
    c.writeUInt16LE(z64 ? 45 : 20, 6);
    c.writeUInt16LE(e.flags ?? 0x800, 8);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(z64 ? 0xffffffff : body.length, 20);
    c.writeUInt32LE(z64 ? 0xffffffff : e.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(extraCentral.length, 30);
    c.writeUInt32LE(z64 ? 0xffffffff : offset, 42);
    central.push(c, name, extraCentral);
    offset += 30 + name.length + extraLocal.length + body.length;
  }
  const cd = Buffer.concat(central);
  const cdOffset = offset;
  const tail: Buffer[] = [];
  if (opts.zip64 === true) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(entries.length), 24);
    rec.writeBigUInt64LE(BigInt(entries.length), 32);
    rec.writeBigUInt64LE(BigInt(cd.length), 40);
    rec.writeBigUInt64LE(BigInt(cdOffset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(cdOffset + cd.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(rec, loc);
  }
  const comment = Buffer.from(opts.comment ?? '', 'latin1');
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  const z = opts.zip64 === true;
  eocd.writeUInt16LE(z ? 0xffff : entries.length, 8);
  eocd.writeUInt16LE(z ? 0xffff : entries.length, 10);
  eocd.writeUInt32LE(z ? 0xffffffff : cd.length, 12);
  eocd.writeUInt32LE(z ? 0xffffffff : cdOffset, 16);
  eocd.writeUInt16LE(comment.length, 20);
  return Buffer.concat([...parts, cd, ...tail, eocd, comment]);
}

/** A pickle assembler: opcodes as methods, bytes() to finish. */
export class PickleBuilder {
  private readonly parts: Buffer[] = [];
  raw(...bytes: number[]): this {
    this.parts.push(Buffer.from(bytes));
    return this;
  }
  proto(p = 2): this {
    return this.raw(0x80, p);
  }
  global(module: string, name: string): this {
    this.parts.push(Buffer.from(`c${module}\n${name}\n`, 'latin1'));
    return this;
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const h = Buffer.alloc(5);
    h[0] = 0x58;
    h.writeUInt32LE(b.length, 1);
    this.parts.push(h, b);
    return this;
  }
  int(n: number): this {
    const h = Buffer.alloc(5);
    h[0] = 0x4a;
    h.writeInt32LE(n, 1);
    this.parts.push(h);
    return this;
  }
  /** BINFLOAT: a Python float, big-endian float64. */
  float(x: number): this {
    const h = Buffer.alloc(9);
    h[0] = 0x47;
    h.writeDoubleBE(x, 1);
    this.parts.push(h);
    return this;
  }
  /** An int, or a float where a PyFloat is given (hostile sizes such as 8.0). */
  num(n: number | PyFloat): this {
    return n instanceof PyFloat ? this.float(n.value) : this.int(n);
  }
  mark(): this {
    return this.raw(0x28);
  }
  tuple(): this {
    return this.raw(0x74);
  }
  emptyTuple(): this {
    return this.raw(0x29);
  }
  emptyDict(): this {
    return this.raw(0x7d);
  }
  emptyList(): this {
    return this.raw(0x5d);
  }
  none(): this {
    return this.raw(0x4e);
  }
  newFalse(): this {
    return this.raw(0x89);
  }
  reduce(): this {
    return this.raw(0x52);
  }
  setitem(): this {
    return this.raw(0x73);
  }
  binpersid(): this {
    return this.raw(0x51);
  }
  put(i: number): this {
    return this.raw(0x71, i);
  }
  get(i: number): this {
    return this.raw(0x68, i);
  }
  stop(): this {
    return this.raw(0x2e);
  }
  /** Persistent id ('storage', torch.<type>, key, 'cpu', numel) as torch's zip format writes it. */
  storagePid(type: string, key: string, numel: number | PyFloat): this {
    return this.mark().str('storage').global('torch', type).str(key).str('cpu').num(numel).tuple().binpersid();
  }
  /**
   * _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) for a storage pid; a
   * PyFloat anywhere is pickled as a float (torch itself never writes one).
   */
  tensor(type: string, key: string, numel: number | PyFloat, offset: number | PyFloat, size: (number | PyFloat)[], stride: (number | PyFloat)[]): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark().storagePid(type, key, numel).num(offset);
    this.mark();
    for (const s of size) this.num(s);
    this.tuple().mark();
    for (const s of stride) this.num(s);
    return this.tuple().newFalse().global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Float32 values as little-endian bytes. */
export function f32Bytes(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatLE(v, i * 4));
  return b;
}

/** A torch-style zip holding data.pkl (and storages) under `archive/`. */
export function torchZip(pkl: Uint8Array, storages: Record<string, Uint8Array> = {}, extra: ZipInput[] = []): Buffer {
  return buildZip([
    { name: 'archive/data.pkl', data: pkl },
    ...extra,
    ...Object.entries(storages).map(([k, d]) => ({ name: `archive/data/${k}`, data: d })),
    { name: 'archive/version', data: Buffer.from('3\n') },
  ]);
}

/** A HandlerContext for calling allowlist handlers directly: fails as the VM does, counts the work charged. */
export function handlerContext(file = 't.pkl'): HandlerContext & { charged: number } {
  const ctx = {
    file,
    offset: 0,
    charged: 0,
    fail(reason: string): never {
      throw new CheckpointError(file, `corrupt pickle: ${reason} at offset 0`);
    },
    charge(n: number): void {
      ctx.charged += n;
    },
    pendingKey: (): string | undefined => undefined,
  };
  return ctx;
}
