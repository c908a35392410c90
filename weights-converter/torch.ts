/**
 * torch.save checkpoints, read without Python: the zip format (torch >= 1.6: `<archive>/data.pkl`
 * plus one `<archive>/data/<key>` entry per storage) and the legacy format (torch < 1.6: five
 * consecutive pickles followed by the raw storages). Mirrors torch/serialization.py `_load` and
 * `_legacy_load`, with the unpickler restricted to the allowlist below.
 *
 * Tensors are first unpickled as lazy references (storage key, offset, shape, stride); only those of
 * the selected state dict are read, one storage at a time, so the optimizer state or a model_ema
 * next to the model costs nothing and memory stays near the size of the decoded tensors.
 */
import * as fs from 'fs';
import { CheckpointError } from './errors';
import { decodeElements } from './dtype';
import {
  BASE_GLOBALS,
  BufferSource,
  FileSource,
  GlobalHandler,
  HandlerContext,
  PyCustom,
  PyDict,
  PyGlobal,
  PyList,
  PyTuple,
  PyValue,
  opaqueClass,
  typeName,
  unpickle,
} from './pickle';
import { ITEM_SIZE, RawTensor, ReadCheckpointOptions, SourceDType } from './types';
import { ZipReader, readExactly } from './zip';

/** Elements of a tensor larger than its storage (stride-0 broadcasts) are capped at this. */
const MAX_EXPANDED_NUMEL = 1 << 24;
/** Largest tensor decoded (elements); typed arrays and memory both argue for a bound. */
const MAX_NUMEL = 2 ** 31 - 1;
/** Storages up to this size are read in one piece (and CRC-checked); larger ones tensor by tensor. */
const MAX_BLOCK_BYTES = 1 << 30;
const MAX_RANK = 32;

/** A torch storage named by a persistent id. Legacy storage views have a nonzero element offset. */
export class StorageRef extends PyCustom {
  constructor(
    /** Key of the storage holding the bytes (the root storage for legacy views). */
    readonly key: string,
    readonly dtype: SourceDType,
    /** Elements visible through this storage. */
    readonly numel: number,
    readonly location: string,
    /** Start of this storage within the root storage, in elements. */
    readonly elementOffset = 0,
  ) {
    super();
  }
  describe(): string {
    return `storage '${this.key}' (${this.numel} ${this.dtype})`;
  }
}

/** A tensor view on a storage, not yet read. */
export class TensorRef extends PyCustom {
  constructor(
    readonly storage: StorageRef,
    /** Offset in elements from the start of `storage`. */
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly dtype: SourceDType,
    readonly numel: number,
  ) {
    super();
  }
  describe(): string {
    return `tensor ${this.dtype}[${this.shape.join(', ')}]`;
  }
}

const STORAGE_DTYPES: Readonly<Record<string, SourceDType>> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

const TORCH_DTYPES: Readonly<Record<string, SourceDType>> = {
  float32: 'float32',
  float: 'float32',
  float16: 'float16',
  half: 'float16',
  bfloat16: 'bfloat16',
  float64: 'float64',
  double: 'float64',
  int64: 'int64',
  long: 'int64',
  int32: 'int32',
  int: 'int32',
  int16: 'int16',
  short: 'int16',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
};

/** dtype of a storage class global (torch.FloatStorage, torch.cuda.HalfStorage, torch.UntypedStorage). */
function storageDType(v: PyValue, ctx: HandlerContext): SourceDType {
  if (v instanceof PyGlobal) {
    if (v.name === 'torch.UntypedStorage' || v.name === 'torch.storage.UntypedStorage') return 'uint8';
    const cls = v.name.slice(v.name.lastIndexOf('.') + 1);
    const d = STORAGE_DTYPES[cls];
    if (d !== undefined) return d;
  }
  return ctx.fail(`unsupported storage type ${typeName(v)}`);
}

function torchDType(v: PyValue, ctx: HandlerContext): SourceDType {
  if (v instanceof PyGlobal && v.name.startsWith('torch.')) {
    const d = TORCH_DTYPES[v.name.slice(6)];
    if (d !== undefined) return d;
  }
  return ctx.fail(`unsupported tensor dtype ${typeName(v)}`);
}

function asInt(v: PyValue, what: string, ctx: HandlerContext): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    ctx.fail(`${what} must be a non-negative integer, got ${typeName(v)} ${typeof v === 'number' ? v : ''}`.trimEnd());
  }
  return v as number;
}

function asIntTuple(v: PyValue, what: string, ctx: HandlerContext): number[] {
  if (!(v instanceof PyTuple || v instanceof PyList)) ctx.fail(`${what} must be a tuple, got ${typeName(v)}`);
  const items = (v as PyTuple).items;
  if (items.length > MAX_RANK) ctx.fail(`${what} has ${items.length} dimensions (at most ${MAX_RANK})`);
  return items.map((x, i) => asInt(x, `${what}[${i}]`, ctx));
}

function asText(v: PyValue): string | null {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1'); // Python 2 str loaded as bytes
  return null;
}

/** torch._utils._rebuild_tensor: check the view against its storage and make a TensorRef. */
function rebuildTensor(args: PyValue[], ctx: HandlerContext, dtypeOverride?: SourceDType): TensorRef {
  let storage = args[0];
  if (!(storage instanceof StorageRef)) ctx.fail(`tensor storage must be a storage, got ${typeName(storage)}`);
  let s = storage as StorageRef;
  if (dtypeOverride !== undefined && dtypeOverride !== s.dtype) {
    // _rebuild_tensor_v3: an untyped (byte) storage viewed as `dtypeOverride` elements.
    const bytes = s.numel * ITEM_SIZE[s.dtype];
    const size = ITEM_SIZE[dtypeOverride];
    const startBytes = s.elementOffset * ITEM_SIZE[s.dtype];
    if (startBytes % size !== 0) ctx.fail(`storage '${s.key}' is not aligned for ${dtypeOverride}`);
    s = new StorageRef(s.key, dtypeOverride, Math.floor(bytes / size), s.location, startBytes / size);
    storage = s;
  }
  const offset = asInt(args[1], 'storage offset', ctx);
  const shape = asIntTuple(args[2], 'size', ctx);
  const stride = asIntTuple(args[3], 'stride', ctx);
  if (shape.length !== stride.length) ctx.fail(`size has ${shape.length} dimensions but stride has ${stride.length}`);
  let numel = 1;
  for (const d of shape) numel *= d;
  if (numel > MAX_NUMEL) ctx.fail(`tensor of ${numel} elements is too large`);
  if (numel > 0) {
    let last = offset;
    for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * stride[i];
    if (last >= s.numel) {
      ctx.fail(
        `tensor [${shape.join(', ')}] with stride [${stride.join(', ')}] and offset ${offset} needs elements ` +
          `up to ${last} but ${s.describe()} has only ${s.numel} elements`,
      );
    }
    if (numel > s.numel && numel > MAX_EXPANDED_NUMEL) {
      ctx.fail(`tensor view of ${numel} elements over a storage of ${s.numel} elements (overlapping strides) is too large`);
    }
  }
  ctx.charge(shape.length);
  return new TensorRef(s, offset, shape, stride, s.dtype, numel);
}

function tensorArg(v: PyValue, ctx: HandlerContext, what: string): TensorRef {
  if (!(v instanceof TensorRef)) ctx.fail(`${what} expects a tensor, got ${typeName(v)}`);
  return v as TensorRef;
}

function argCount(args: PyValue[], min: number, max: number, name: string, ctx: HandlerContext): void {
  if (args.length < min || args.length > max) {
    ctx.fail(`${name} takes ${min === max ? min : `${min} to ${max}`} arguments, got ${args.length}`);
  }
}

/** A global that may be named (as a type or constant) but not called. */
const inert: GlobalHandler = {};

/** Tensor classes _rebuild_from_type_v2 may rebuild (their Python state is ignored). */
const TENSOR_TYPES = new Set(['torch.Tensor', 'torch._tensor.Tensor', 'torch.nn.parameter.Parameter']);

function buildTorchGlobals(): Map<string, GlobalHandler> {
  const g = new Map<string, GlobalHandler>(BASE_GLOBALS);
  g.set('torch._utils._rebuild_tensor', {
    call: (a, ctx) => (argCount(a, 4, 4, '_rebuild_tensor', ctx), rebuildTensor(a, ctx)),
  });
  g.set('torch._utils._rebuild_tensor_v2', {
    call: (a, ctx) => (argCount(a, 4, 7, '_rebuild_tensor_v2', ctx), rebuildTensor(a, ctx)),
  });
  g.set('torch._utils._rebuild_tensor_v3', {
    call: (a, ctx) => {
      argCount(a, 7, 8, '_rebuild_tensor_v3', ctx);
      return rebuildTensor(a, ctx, torchDType(a[6], ctx));
    },
  });
  g.set('torch._utils._rebuild_parameter', {
    call: (a, ctx) => (argCount(a, 1, 3, '_rebuild_parameter', ctx), tensorArg(a[0], ctx, '_rebuild_parameter')),
  });
  g.set('torch._utils._rebuild_parameter_with_state', {
    call: (a, ctx) => (argCount(a, 1, 4, '_rebuild_parameter_with_state', ctx), tensorArg(a[0], ctx, '_rebuild_parameter_with_state')),
  });
  // Tensor subclasses and tensors with Python attributes: (func, type, args, state). Only plain
  // tensors and parameters are accepted; func must itself be allowlisted to be called.
  const fromType = (a: PyValue[], ctx: HandlerContext): PyValue => {
    argCount(a, 3, 4, '_rebuild_from_type_v2', ctx);
    const [func, type, args] = a;
    if (!(type instanceof PyGlobal) || !TENSOR_TYPES.has(type.name)) ctx.fail(`unsupported tensor type ${typeName(type)}`);
    if (!(func instanceof PyGlobal) || func.handler.call === undefined) ctx.fail(`${typeName(func)} is not callable`);
    if (!(args instanceof PyTuple)) ctx.fail('_rebuild_from_type_v2 arguments must be a tuple');
    return tensorArg((func as PyGlobal).handler.call!((args as PyTuple).items, ctx), ctx, '_rebuild_from_type_v2');
  };
  g.set('torch._tensor._rebuild_from_type_v2', { call: fromType });
  g.set('torch._tensor._rebuild_from_type', { call: fromType });
  for (const t of TENSOR_TYPES) g.set(t, inert);
  for (const cls of Object.keys(STORAGE_DTYPES)) {
    g.set(`torch.${cls}`, inert);
    g.set(`torch.cuda.${cls}`, inert);
  }
  g.set('torch.UntypedStorage', inert);
  g.set('torch.storage.UntypedStorage', inert);
  for (const d of Object.keys(TORCH_DTYPES)) g.set(`torch.${d}`, inert);
  g.set('torch.Size', {
    call: (a, ctx) => {
      argCount(a, 0, 1, 'torch.Size', ctx);
      return new PyTuple(a.length === 0 ? [] : asIntTuple(a[0], 'torch.Size', ctx));
    },
  });
  // Training metadata found next to state dicts: kept as opaque values, never run.
  for (const name of [
    'torch.device',
    'argparse.Namespace',
    'numpy.dtype',
    'numpy.ndarray',
    'numpy.core.multiarray.scalar',
    'numpy.core.multiarray._reconstruct',
    'numpy._core.multiarray.scalar',
    'numpy._core.multiarray._reconstruct',
  ]) {
    g.set(name, opaqueClass(name));
  }
  return g;
}

/** The allowlist used for torch checkpoints: containers, tensor rebuilders, storage and dtype names. */
export const TORCH_GLOBALS: ReadonlyMap<string, GlobalHandler> = buildTorchGlobals();

/** The typename of a persistent id tuple, checked to be 'storage'. */
function storagePid(pid: PyValue, ctx: HandlerContext, arity: number): PyValue[] {
  if (!(pid instanceof PyTuple)) return ctx.fail(`persistent id must be a tuple, got ${typeName(pid)}`);
  const typename = asText(pid.items[0] ?? null);
  if (typename === 'module') {
    ctx.fail('the checkpoint pickles a whole nn.Module (persistent id "module"), not a state dict; save model.state_dict() instead');
  }
  if (typename !== 'storage') ctx.fail(`unknown persistent id type ${JSON.stringify(typename ?? typeName(pid.items[0]))}`);
  if (pid.items.length !== arity) ctx.fail(`storage persistent id has ${pid.items.length} fields, expected ${arity}`);
  return pid.items;
}

/** Reads byte ranges of storages by key. */
interface StorageSource {
  /**
   * One buffer covering at least [byteStart, byteStart + byteLength) of the storage, with the storage
   * byte offset it starts at (a zip returns the whole entry, so its CRC can be checked), or null
   * when that is too big to hold at once.
   */
  readBlock(key: string, byteStart: number, byteLength: number): { bytes: Uint8Array; start: number } | null;
  /** A byte range of the storage. */
  readRange(key: string, byteStart: number, byteLength: number): Uint8Array;
}

/** A lazily unpickled torch checkpoint: the root object and a way to read its storages. */
export interface TorchContents {
  format: 'torch-zip' | 'torch-legacy';
  root: PyValue;
  source: StorageSource;
  close(): void;
}

/** Open a torch zip checkpoint and unpickle its data.pkl (storages are read later). */
export function openTorchZip(path: string, opts: ReadCheckpointOptions = {}): TorchContents {
  const zip = ZipReader.open(path);
  try {
    const verifyCrc = opts.verifyCrc !== false;
    const names = zip.names();
    if (names.length === 0) throw new CheckpointError(path, 'empty zip archive (not a torch.save checkpoint)');
    const first = names[0];
    const prefix = first.includes('/') ? first.slice(0, first.indexOf('/') + 1) : '';
    const pklName = `${prefix}data.pkl`;
    if (zip.get(`${prefix}constants.pkl`) !== undefined || names.some((n) => n.startsWith(`${prefix}code/`))) {
      throw new CheckpointError(
        path,
        'this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; save model.state_dict() with torch.save',
      );
    }
    if (zip.get(pklName) === undefined) {
      throw new CheckpointError(path, `zip archive has no '${pklName}' entry (not a torch.save checkpoint)`);
    }
    const order = zip.get(`${prefix}byteorder`);
    if (order !== undefined) {
      const text = zip.read(order, { verifyCrc, maxBytes: 64 }).toString('latin1').trim();
      if (text === 'big') throw new CheckpointError(path, "big-endian checkpoint (byteorder 'big') is not supported");
      if (text !== 'little') throw new CheckpointError(path, `unknown byteorder '${text.slice(0, 16)}'`);
    }
    const pkl = zip.read(pklName, { verifyCrc, maxBytes: MAX_BLOCK_BYTES });

    const storages = new Map<string, StorageRef>();
    const persistentLoad = (pid: PyValue, ctx: HandlerContext): PyValue => {
      const [, type, keyV, locV, numelV] = storagePid(pid, ctx, 5);
      const key = asText(keyV);
      if (key === null) return ctx.fail(`storage key must be a string, got ${typeName(keyV)}`);
      const cached = storages.get(key);
      if (cached !== undefined) return cached;
      const dtype = storageDType(type, ctx);
      const numel = asInt(numelV, 'storage size', ctx);
      const entry = zip.get(`${prefix}data/${key}`);
      if (entry === undefined) ctx.fail(`storage '${key}' is missing from the archive (no entry '${prefix}data/${key}')`);
      const need = numel * ITEM_SIZE[dtype];
      if (entry!.uncompressedSize < need) {
        ctx.fail(`storage '${key}' holds ${entry!.uncompressedSize} bytes but its persistent id declares ${numel} ${dtype} elements (${need} bytes)`);
      }
      const ref = new StorageRef(key, dtype, numel, asText(locV) ?? 'cpu');
      storages.set(key, ref);
      return ref;
    };
    const root = unpickle(new BufferSource(pkl), { file: path, globals: TORCH_GLOBALS, persistentLoad, label: pklName });

    const entryOf = (key: string) => zip.get(`${prefix}data/${key}`)!;
    const source: StorageSource = {
      readBlock(key) {
        const entry = entryOf(key);
        if (entry.uncompressedSize > MAX_BLOCK_BYTES) return null;
        return { bytes: zip.read(entry, { verifyCrc }), start: 0 };
      },
      readRange(key, start, length) {
        return zip.readRange(entryOf(key), start, length);
      },
    };
    return { format: 'torch-zip', root, source, close: () => zip.close() };
  } catch (e) {
    zip.close();
    throw e;
  }
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

/** Open a legacy (pre-1.6) torch checkpoint: five pickles, then the storages back to back. */
export function openTorchLegacy(path: string): TorchContents {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    throw new CheckpointError(path, `cannot open: ${(e as Error).message}`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const src = new FileSource((pos, len) => readExactly(fd, pos, len, path, 'legacy checkpoint'), 0, size);
    const plain = { file: path, globals: TORCH_GLOBALS };
    const magic = unpickle(src, { ...plain, label: 'magic number pickle' });
    if (magic !== LEGACY_MAGIC) {
      throw new CheckpointError(path, 'not a torch checkpoint: a pickle without the torch legacy magic number');
    }
    const protocol = unpickle(src, { ...plain, label: 'protocol version pickle' });
    if (protocol !== LEGACY_PROTOCOL) throw new CheckpointError(path, `unsupported legacy protocol version ${String(protocol)}`);
    const sysInfo = unpickle(src, { ...plain, label: 'sys_info pickle' });
    if (sysInfo instanceof PyDict && sysInfo.map.get('little_endian') === false) {
      throw new CheckpointError(path, 'big-endian checkpoint (sys_info little_endian=False) is not supported');
    }

    const roots = new Map<string, StorageRef>();
    const views = new Map<string, StorageRef>();
    const persistentLoad = (pid: PyValue, ctx: HandlerContext): PyValue => {
      const [, type, keyV, locV, numelV, view] = storagePid(pid, ctx, 6);
      const key = asText(keyV);
      if (key === null) return ctx.fail(`storage key must be a string, got ${typeName(keyV)}`);
      let root = roots.get(key);
      if (root === undefined) {
        root = new StorageRef(key, storageDType(type, ctx), asInt(numelV, 'storage size', ctx), asText(locV) ?? 'cpu');
        roots.set(key, root);
      }
      if (view === null) return root;
      // Pre-1.0 storage views: (view_key, offset, size) in elements of the root storage.
      if (!(view instanceof PyTuple) || view.items.length !== 3) return ctx.fail('malformed storage view metadata');
      const viewKey = asText(view.items[0]) ?? ctx.fail('storage view key must be a string');
      const cached = views.get(viewKey);
      if (cached !== undefined) return cached;
      const off = asInt(view.items[1], 'view offset', ctx);
      const n = asInt(view.items[2], 'view size', ctx);
      if (off + n > root.numel) ctx.fail(`storage view '${viewKey}' [${off}, ${off + n}) exceeds ${root.describe()}`);
      const v = new StorageRef(key, root.dtype, n, root.location, off);
      views.set(viewKey, v);
      return v;
    };
    const root = unpickle(src, { ...plain, persistentLoad, label: 'object pickle' });
    const keys = unpickle(src, { ...plain, label: 'storage keys pickle' });
    if (!(keys instanceof PyList)) throw new CheckpointError(path, `corrupt legacy checkpoint: storage key list is ${typeName(keys)}`);

    // Each storage: int64 element count, then the raw elements.
    const offsets = new Map<string, number>();
    let pos = src.position;
    for (const k of keys.items) {
      const key = asText(k);
      const ref = key === null ? undefined : roots.get(key);
      if (key === null || ref === undefined) {
        throw new CheckpointError(path, `corrupt legacy checkpoint: storage key ${JSON.stringify(key ?? typeName(k))} is not referenced by the pickle`);
      }
      const head = readExactly(fd, pos, 8, path, `legacy storage '${key}' header`);
      const count = head.readBigInt64LE(0);
      if (count !== BigInt(ref.numel)) {
        throw new CheckpointError(path, `corrupt legacy checkpoint: storage '${key}' has ${count} elements in the file but ${ref.numel} in its persistent id`);
      }
      const bytes = ref.numel * ITEM_SIZE[ref.dtype];
      if (pos + 8 + bytes > size) {
        throw new CheckpointError(path, `truncated legacy checkpoint: storage '${key}' (${bytes} bytes at ${pos + 8}) extends past the end of the ${size}-byte file`);
      }
      offsets.set(key, pos + 8);
      pos += 8 + bytes;
    }
    const dataOffset = (key: string): number => {
      const o = offsets.get(key);
      if (o === undefined) throw new CheckpointError(path, `corrupt legacy checkpoint: storage '${key}' has no data in the file`);
      return o;
    };
    const source: StorageSource = {
      readBlock(key, start, length) {
        if (length > MAX_BLOCK_BYTES) return null;
        return { bytes: readExactly(fd, dataOffset(key) + start, length, path, `storage '${key}'`), start };
      },
      readRange(key, start, length) {
        return readExactly(fd, dataOffset(key) + start, length, path, `storage '${key}'`);
      },
    };
    return { format: 'torch-legacy', root, source, close: () => fs.closeSync(fd) };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** The state dict chosen from a checkpoint's root object. */
export interface SelectedStateDict {
  entries: [string, TensorRef][];
  wrapper: string | null;
  otherKeys: string[];
  strippedPrefix: string | null;
}

/** Wrapper keys tried in order when none is given. */
export const WRAPPER_KEYS: readonly string[] = ['model', 'state_dict', 'model_ema', 'module', 'state_dict_ema'];

function keyText(k: PyValue): string {
  return typeof k === 'string' ? k : typeof k === 'number' || typeof k === 'bigint' ? String(k) : `<${typeName(k)}>`;
}

function tensorCount(d: PyValue | undefined): number {
  if (!(d instanceof PyDict)) return 0;
  let n = 0;
  for (const v of d.map.values()) if (v instanceof TensorRef) n++;
  return n;
}

/**
 * Unwrap a checkpoint: a dict of tensors is used as is; otherwise the state dict under
 * `wrapperKey`, or the first of WRAPPER_KEYS holding tensors. A 'module.' prefix on every key is
 * removed. Non-tensor values are listed in otherKeys (inside the wrapper as 'wrapper.key').
 */
export function selectStateDict(root: PyValue, file: string, wrapperKey?: string): SelectedStateDict {
  if (!(root instanceof PyDict)) {
    throw new CheckpointError(file, `top-level object is ${typeName(root)}, expected a dict of tensors (a state dict)`);
  }
  const topKeys = [...root.map.keys()].map(keyText);
  let dict: PyDict = root;
  let wrapper: string | null = null;
  if (wrapperKey !== undefined) {
    const v = root.map.get(wrapperKey);
    if (v === undefined) {
      throw new CheckpointError(file, `wrapper key '${wrapperKey}' not found; top-level keys: ${topKeys.join(', ') || '(none)'}`);
    }
    if (!(v instanceof PyDict)) throw new CheckpointError(file, `'${wrapperKey}' holds ${typeName(v)}, not a state dict`);
    dict = v;
    wrapper = wrapperKey;
  } else if (tensorCount(root) !== root.map.size || root.map.size === 0) {
    for (const k of WRAPPER_KEYS) {
      const v = root.map.get(k);
      if (v instanceof PyDict && tensorCount(v) > 0) {
        dict = v;
        wrapper = k;
        break;
      }
    }
    if (wrapper === null && tensorCount(root) === 0 && root.map.size > 0) {
      throw new CheckpointError(
        file,
        `no state dict found: top-level keys are ${topKeys.join(', ')}; none of ${WRAPPER_KEYS.join(', ')} holds a dict of tensors`,
      );
    }
  }
  const otherKeys = wrapper === null ? [] : topKeys.filter((k) => k !== wrapper);
  const entries: [string, TensorRef][] = [];
  for (const [k, v] of dict.map) {
    if (!(v instanceof TensorRef)) {
      otherKeys.push(wrapper === null ? keyText(k) : `${wrapper}.${keyText(k)}`);
      continue;
    }
    if (typeof k !== 'string') throw new CheckpointError(file, `state dict key ${keyText(k)} (${typeName(k)}) is not a string`);
    entries.push([k, v]);
  }
  let strippedPrefix: string | null = null;
  if (entries.length > 0 && entries.every(([k]) => k.startsWith('module.'))) {
    strippedPrefix = 'module.';
    for (const e of entries) e[0] = e[0].slice('module.'.length);
  }
  return { entries, wrapper, otherKeys: otherKeys.sort(), strippedPrefix };
}

type Decoded = Float32Array | Int32Array | Uint8Array;

function emptyOf(dtype: SourceDType, n: number): Decoded {
  if (dtype === 'bool') return new Uint8Array(n);
  if (dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16' || dtype === 'float64') return new Float32Array(n);
  return new Int32Array(n);
}

/** Copy a strided view (offsets relative to `src`) into a C-order array. */
function gather(src: Decoded, shape: number[], stride: number[], out: Decoded): void {
  const nd = shape.length;
  if (nd === 0) {
    out[0] = src[0];
    return;
  }
  const innerN = shape[nd - 1];
  const innerS = stride[nd - 1];
  const idx = new Array<number>(nd).fill(0);
  let o = 0;
  let base = 0;
  for (;;) {
    for (let j = 0, p = base; j < innerN; j++, p += innerS) out[o++] = src[p];
    let d = nd - 2;
    for (; d >= 0; d--) {
      idx[d]++;
      base += stride[d];
      if (idx[d] < shape[d]) break;
      base -= stride[d] * shape[d];
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

/**
 * Read and decode the given tensors, one storage at a time. Tensors sharing a storage get their
 * own arrays; strides and offsets are applied so every result is contiguous C-order.
 */
export function materializeTensors(entries: [string, TensorRef][], source: StorageSource, file: string): Map<string, RawTensor> {
  const out = new Map<string, RawTensor>();
  const groups = new Map<string, [string, TensorRef][]>();
  for (const e of entries) {
    const key = e[1].storage.key;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = []));
    g.push(e);
  }
  const results = new Map<string, RawTensor>();
  for (const [key, group] of groups) {
    // Element range of the root storage that the group needs.
    let lo = Infinity;
    let hi = -Infinity;
    for (const [, t] of group) {
      if (t.numel === 0) continue;
      const start = t.storage.elementOffset + t.offset;
      let last = start;
      for (let i = 0; i < t.shape.length; i++) last += (t.shape[i] - 1) * t.stride[i];
      lo = Math.min(lo, start);
      hi = Math.max(hi, last + 1);
    }
    const item = ITEM_SIZE[group[0][1].storage.dtype];
    let block: Uint8Array | null = null;
    let blockStart = 0;
    if (hi > lo) {
      const b = source.readBlock(key, lo * item, (hi - lo) * item);
      if (b !== null) {
        block = b.bytes;
        blockStart = b.start;
      }
    }
    for (const [name, t] of group) {
      if (t.numel === 0) {
        results.set(name, { shape: t.shape, dtype: t.dtype, data: emptyOf(t.dtype, 0) });
        continue;
      }
      if (ITEM_SIZE[t.dtype] !== item) throw new CheckpointError(file, `storage '${key}' is viewed with two element sizes`);
      const start = t.storage.elementOffset + t.offset;
      let last = start;
      for (let i = 0; i < t.shape.length; i++) last += (t.shape[i] - 1) * t.stride[i];
      const byteStart = start * item;
      const byteLen = (last + 1 - start) * item;
      let bytes: Uint8Array;
      if (block !== null) {
        if (byteStart - blockStart < 0 || byteStart - blockStart + byteLen > block.length) {
          throw new CheckpointError(file, `storage '${key}' is shorter than tensor '${name}' needs`);
        }
        bytes = block.subarray(byteStart - blockStart, byteStart - blockStart + byteLen);
      } else {
        bytes = source.readRange(key, byteStart, byteLen);
      }
      let decoded: Decoded;
      try {
        decoded = decodeElements(bytes, t.dtype, file);
      } catch (e) {
        if (e instanceof CheckpointError) throw new CheckpointError(file, `tensor '${name}': ${e.reason}`);
        throw e;
      }
      let data: Decoded;
      if (isContiguous(t.shape, t.stride)) {
        // decodeElements may return a view of `block`: keep it only when nothing else shares it.
        const shared = decoded.buffer === bytes.buffer && (group.length > 1 || decoded.byteLength !== decoded.buffer.byteLength);
        data = shared ? decoded.slice() : decoded;
      } else {
        data = emptyOf(t.dtype, t.numel);
        gather(decoded, t.shape, t.stride, data);
      }
      results.set(name, { shape: t.shape, dtype: t.dtype, data });
    }
  }
  // Keep the state dict's order, not the storage grouping order.
  for (const [name] of entries) out.set(name, results.get(name)!);
  return out;
}
