/**
 * Writes a state dict as torch.save does (the zip format, torch >= 1.6), readable by
 * torch.load(f, weights_only=True):
 *
 *   archive/data.pkl      pickle (protocol 2) of the object; each tensor is
 *                         torch._utils._rebuild_tensor_v2(persistent ('storage', torch.FloatStorage,
 *                         '<key>', 'cpu', numel), 0, shape, C-order strides, False, OrderedDict())
 *   archive/byteorder     'little'
 *   archive/data/<key>    the storage's raw little-endian bytes
 *   archive/version       '3\n'
 *
 * Entries are STORED (no compression) and every entry's data starts at a multiple of 64 bytes,
 * padded with an 'FB' extra field in the local header the way caffe2/serialize/inline_container.cc
 * (kFieldAlignment = 64) pads them, so readers may mmap the tensors. Classic zip only: files over
 * 4 GiB are refused rather than written as ZIP64.
 */
import * as fs from 'fs';
import { writeFileAtomic } from '../src/util/fs';
import { CheckpointError } from './errors';
import { PickleDict, PickleGlobal, PicklePersistentId, PickleReduce, PickleTuple, PickleValue, pickle } from './pickle_writer';
import { crc32 } from './zip';
import { encodeFloat16 } from './dtype';
import { cStrides } from '../src/util/ndarray';

/** Storage dtype written. */
export type TorchWriteDType = 'float32' | 'float16';

/** A tensor to write: C-order float32 values and PyTorch's shape. */
export interface TorchTensor {
  shape: number[];
  data: Float32Array;
}

const ALIGN = 64;
const LOCAL_HEADER = 30;
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Little-endian 16- and 32-bit fields, in order: the pieces of a zip record (APPNOTE 4.3). */
function u16(...values: number[]): Buffer {
  const b = Buffer.alloc(2 * values.length);
  values.forEach((v, i) => b.writeUInt16LE(v, 2 * i));
  return b;
}
function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32LE(v, 4 * i));
  return b;
}

/** Builds the STORED, 64-byte aligned zip in memory as a list of chunks. */
function buildZip(entries: { name: string; data: Uint8Array }[], file: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  // DOS date/time of 1980-01-01 00:00, as torch (miniz) writes with no clock.
  const dosTime = 0;
  const dosDate = (0 << 9) | (1 << 5) | 1;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const start = offset + LOCAL_HEADER + name.length + 4; // data position with an empty 'FB' field
    const pad = (ALIGN - (start % ALIGN)) % ALIGN;
    const extra = Buffer.alloc(4 + pad, 'Z'.charCodeAt(0));
    extra.write('FB', 0, 'latin1');
    extra.writeUInt16LE(pad, 2);
    const crc = crc32(e.data);
    const size = e.data.byteLength;
    if (offset + LOCAL_HEADER + name.length + extra.length + size > 0xffffffff) {
      throw new CheckpointError(file, 'export larger than 4 GiB: ZIP64 is not written; use --fp16 or the safetensors layouts');
    }
    // The fields the local and central headers share: version needed 2.0, flags, STORED, time,
    // date, crc, both sizes, name length, extra length.
    const shared = (extraLength: number) => [u16(20, 0, 0, dosTime, dosDate), u32(crc, size, size), u16(name.length, extraLength)];
    out.push(Buffer.concat([u32(0x04034b50), ...shared(extra.length)]), name, extra, e.data);
    // Central directory entry: version made by, the shared fields (no extra), then comment length,
    // disk, internal attributes, external attributes and the local header's offset.
    const cd = Buffer.concat([u32(0x02014b50), u16(20), ...shared(0), u16(0, 0, 0), u32(0, offset)]);
    central.push(cd, name);
    offset += LOCAL_HEADER + name.length + extra.length + size;
  }
  const cdSize = central.reduce((a, c) => a + c.byteLength, 0);
  if (offset + cdSize > 0xffffffff || entries.length > 0xffff) throw new CheckpointError(file, 'export too large for a classic zip (ZIP64 is not written)');
  // End of central directory: disk numbers, entry counts, its size and offset, comment length.
  const eocd = Buffer.concat([u32(0x06054b50), u16(0, 0, entries.length, entries.length), u32(cdSize, offset), u16(0)]);
  return [...out, ...central, eocd];
}

/**
 * Writes `{ [wrapper]: OrderedDict(state dict), ...extra }` (or the bare OrderedDict when `wrapper`
 * is null) to `file` atomically, in the torch zip format. `extra` entries (plain values: numbers,
 * strings, dicts of them) go beside the state dict, as FB's save_model puts 'epoch' and 'args'.
 */
export function writeTorchCheckpoint(
  file: string,
  stateDict: Map<string, TorchTensor>,
  opts: { wrapper?: string | null; dtype?: TorchWriteDType; extra?: readonly [string, PickleValue][] } = {},
): void {
  if (!HOST_LE) throw new CheckpointError(file, 'writing torch checkpoints needs a little-endian host');
  const dtype = opts.dtype ?? 'float32';
  const storageClass = new PickleGlobal('torch', dtype === 'float16' ? 'HalfStorage' : 'FloatStorage');
  const rebuild = new PickleGlobal('torch._utils', '_rebuild_tensor_v2');
  const records: { name: string; data: Uint8Array }[] = [];
  const items: [string, PickleValue][] = [];
  let key = 0;
  for (const [name, t] of stateDict) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) throw new CheckpointError(file, `tensor ${name} has shape [${t.shape.join(', ')}] but ${t.data.length} values`);
    const storageKey = String(key++);
    const bytes = dtype === 'float16' ? new Uint8Array(encodeFloat16(t.data).buffer) : new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    records.push({ name: `archive/data/${storageKey}`, data: bytes });
    const storage = new PicklePersistentId(new PickleTuple(['storage', storageClass, storageKey, 'cpu', numel]));
    const args = new PickleTuple([storage, 0, new PickleTuple(t.shape), new PickleTuple(cStrides(t.shape)), false, new PickleDict([], true)]);
    items.push([name, new PickleReduce(rebuild, args)]);
  }
  const sd = new PickleDict(items, true);
  if (opts.extra?.length && !opts.wrapper) throw new CheckpointError(file, 'extra entries need a wrapper key for the state dict');
  const root = opts.wrapper ? new PickleDict([[opts.wrapper, sd], ...(opts.extra ?? [])]) : sd;
  const entries = [
    { name: 'archive/data.pkl', data: pickle(root) },
    { name: 'archive/byteorder', data: Buffer.from('little') },
    ...records,
    { name: 'archive/version', data: Buffer.from('3\n') },
  ];
  const chunks = buildZip(entries, file);
  writeFileAtomic(file, (fd) => {
    for (const c of chunks) for (let p = 0; p < c.byteLength;) p += fs.writeSync(fd, c, p, Math.min(c.byteLength - p, 1 << 30));
  });
}
