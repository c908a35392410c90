/**
 * Writes an FCMAE model as FB2 main_pretrain saves it (utils.save_model), loadable by torch.load and
 * FB2 main_finetune / remap_checkpoint_keys: a torch.save zip archive (format version 3) holding
 *
 *   {'model': OrderedDict(Minkowski names -> float32 tensors), 'epoch': int, 'args': dict}
 *
 * 'args' is a plain dict, not an argparse.Namespace (that needs no global beyond the ones below);
 * the AdamW state stays in the run's checkpoint.safetensors. The pickle is protocol 2 with three
 * globals only: collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.FloatStorage.
 * Zip entries are stored (no compression), data aligned to 64 bytes as PyTorch's writer does.
 */
import * as zlib from 'zlib';
import { writeFileAtomic } from '../util/fs';
import { fcmaeToOfficial } from './checkpoint';
import { Fcmae } from './fcmae';

type Scalar = number | string | boolean | null;

class Pickler {
  private readonly parts: Buffer[] = [];
  private op(...bytes: number[]): void {
    this.parts.push(Buffer.from(bytes));
  }
  proto(): void {
    this.op(0x80, 2);
  }
  stop(): void {
    this.op(0x2e);
  }
  mark(): void {
    this.op(0x28);
  }
  global(mod: string, name: string): void {
    this.parts.push(Buffer.from(`c${mod}\n${name}\n`, 'latin1'));
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    const h = Buffer.alloc(5);
    h[0] = 0x58; // BINUNICODE
    h.writeUInt32LE(b.length, 1);
    this.parts.push(h, b);
  }
  int(n: number): void {
    if (!Number.isInteger(n) || n < -(2 ** 31) || n >= 2 ** 31) throw new Error(`pickle: ${n} is not a 32-bit integer`);
    const b = Buffer.alloc(5);
    b[0] = 0x4a; // BININT
    b.writeInt32LE(n, 1);
    this.parts.push(b);
  }
  float(x: number): void {
    const b = Buffer.alloc(9);
    b[0] = 0x47; // BINFLOAT, big-endian
    b.writeDoubleBE(x, 1);
    this.parts.push(b);
  }
  scalar(v: Scalar): void {
    if (v === null) this.op(0x4e);
    else if (typeof v === 'boolean') this.op(v ? 0x88 : 0x89);
    else if (typeof v === 'string') this.str(v);
    else if (Number.isInteger(v) && Math.abs(v) < 2 ** 31) this.int(v);
    else this.float(v);
  }
  tuple(items: number[]): void {
    if (items.length === 0) return this.op(0x29);
    this.mark();
    for (const i of items) this.int(i);
    this.op(0x74);
  }
  emptyDict(): void {
    this.op(0x7d);
  }
  setItems(): void {
    this.op(0x75);
  }
  reduce(): void {
    this.op(0x52);
  }
  emptyTuple(): void {
    this.op(0x29);
  }
  persId(): void {
    this.op(0x51);
  }
  tupleEnd(): void {
    this.op(0x74);
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

interface Entry {
  name: string;
  data: Uint8Array;
}

function crc32(b: Uint8Array): number {
  const native = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
  if (native) return native(b) >>> 0;
  let c = ~0;
  for (let i = 0; i < b.length; i++) {
    c ^= b[i];
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A stored (method 0) zip archive, each entry's data aligned to 64 bytes with extra-field padding. */
function zipStored(entries: Entry[]): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const crc = crc32(e.data);
    const headerLen = 30 + name.length;
    let pad = (64 - ((offset + headerLen + 4) % 64)) % 64;
    const extra = Buffer.alloc(4 + pad);
    extra.writeUInt16LE(0x414b, 0); // a private extra-field id, as PyTorch's writer pads ('FB' there)
    extra.writeUInt16LE(pad, 2);
    pad += 4;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(0, 6);
    lh.writeUInt16LE(0, 8);
    lh.writeUInt32LE(0, 10);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(e.data.length, 18);
    lh.writeUInt32LE(e.data.length, 22);
    lh.writeUInt16LE(name.length, 26);
    lh.writeUInt16LE(extra.length, 28);
    locals.push(lh, name, extra, Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength));
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(e.data.length, 20);
    ch.writeUInt32LE(e.data.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(offset, 42);
    central.push(ch, name);
    offset += 30 + name.length + extra.length + e.data.length;
    if (offset >= 2 ** 32) throw new Error('torch checkpoint over 4 GiB: zip64 is not written');
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/**
 * torch.save of {'model': OrderedDict(tensors), ...extra} as a zip archive.
 * @param tensors C-order float32 tensors by key, in order
 */
export function torchSaveBytes(tensors: Map<string, { shape: number[]; data: Float32Array }>, extra: Record<string, Scalar | Record<string, Scalar>>, archive = 'archive'): Buffer {
  const p = new Pickler();
  const storages: Entry[] = [];
  p.proto();
  p.emptyDict();
  p.mark();
  p.str('model');
  p.global('collections', 'OrderedDict');
  p.emptyTuple();
  p.reduce();
  p.mark();
  let i = 0;
  for (const [key, t] of tensors) {
    const id = String(i++);
    const strides = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    p.str(key);
    p.global('torch._utils', '_rebuild_tensor_v2');
    p.mark();
    p.mark();
    p.str('storage');
    p.global('torch', 'FloatStorage');
    p.str(id);
    p.str('cpu');
    p.int(t.data.length);
    p.tupleEnd();
    p.persId();
    p.int(0);
    p.tuple(t.shape);
    p.tuple(strides);
    p.scalar(false);
    p.global('collections', 'OrderedDict');
    p.emptyTuple();
    p.reduce();
    p.tupleEnd();
    p.reduce();
    storages.push({ name: `${archive}/data/${id}`, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
  }
  p.setItems();
  for (const [k, v] of Object.entries(extra)) {
    p.str(k);
    if (v !== null && typeof v === 'object') {
      p.emptyDict();
      p.mark();
      for (const [kk, vv] of Object.entries(v)) {
        p.str(kk);
        p.scalar(vv);
      }
      p.setItems();
    } else p.scalar(v);
  }
  p.setItems();
  p.stop();
  return zipStored([
    { name: `${archive}/data.pkl`, data: p.bytes() },
    { name: `${archive}/byteorder`, data: Buffer.from('little') },
    ...storages,
    { name: `${archive}/version`, data: Buffer.from('3\n') },
  ]);
}

/** Writes the full FCMAE (encoder + decoder) in FB2's pretraining checkpoint layout, atomically. */
export function writeFcmaeCheckpoint(file: string, f: Fcmae, extra: { epoch: number; args: Record<string, Scalar> }): void {
  const w = new Map([...f.parameters()].map(([k, v]) => [k, { shape: [...v.shape], data: v.dataSync() as Float32Array }]));
  writeFileAtomic(file, torchSaveBytes(fcmaeToOfficial(w), { epoch: extra.epoch, args: extra.args }));
}
