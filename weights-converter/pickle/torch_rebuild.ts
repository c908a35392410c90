/**
 * What a torch tensor unpickles to here: lazy references (a storage named by its persistent id; a
 * view on it with offset, size and stride), built by handlers standing in for torch's rebuild
 * functions (torch/_utils.py `_rebuild_tensor`, `_rebuild_tensor_v2`, `_rebuild_tensor_v3`,
 * `_rebuild_parameter(_with_state)`; torch/_tensor.py `_rebuild_from_type_v2`; torch.Size). Each
 * view is checked against its storage when it is built; no byte of a storage is read here (see
 * ../torch/materialise.ts). The names that reach these handlers are listed in ./allowlist.ts.
 */
import { ITEM_SIZE, SourceDType } from '../types';
import { HandlerContext, PyCustom, PyFloat, PyGlobal, PyList, PyTuple, PyValue, typeName } from './values';

/** Elements of a tensor larger than its storage (stride-0 broadcasts) are capped at this. */
const MAX_EXPANDED_NUMEL = 1 << 24;
/** Largest tensor decoded (elements); typed arrays and memory both argue for a bound. */
const MAX_NUMEL = 2 ** 31 - 1;
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

/** Typed storage classes (torch.FloatStorage, torch.cuda.HalfStorage...) and their element types. */
export const STORAGE_DTYPES: Readonly<Record<string, SourceDType>> = {
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

/** torch.<dtype> constants (with their aliases) and their element types. */
export const TORCH_DTYPES: Readonly<Record<string, SourceDType>> = {
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

/** Untyped (byte) storage classes of torch >= 2.0. */
export const UNTYPED_STORAGES: readonly string[] = ['torch.UntypedStorage', 'torch.storage.UntypedStorage'];

/** Tensor classes _rebuild_from_type_v2 may rebuild (their Python state is ignored). */
export const TENSOR_TYPES: ReadonlySet<string> = new Set(['torch.Tensor', 'torch._tensor.Tensor', 'torch.nn.parameter.Parameter']);

/** dtype of a storage class global (torch.FloatStorage, torch.cuda.HalfStorage, torch.UntypedStorage). */
export function storageDType(v: PyValue, ctx: HandlerContext): SourceDType {
  if (v instanceof PyGlobal) {
    if (UNTYPED_STORAGES.includes(v.name)) return 'uint8';
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

/**
 * A non-negative safe integer (a size, stride or offset), or a failure naming `what`, the tensor's
 * key where the VM can tell (ctx.pendingKey), and the value. A float is refused even when integral
 * (8.0), as torch refuses float sizes.
 */
export function asInt(v: PyValue, what: string, ctx: HandlerContext): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  const key = ctx.pendingKey();
  const subject = key === undefined ? what : `tensor '${key}': ${what}`;
  if (v instanceof PyFloat) return ctx.fail(`${subject} is the float ${v.repr()}, not an int (torch refuses float sizes, strides and offsets)`);
  return ctx.fail(`${subject} must be a non-negative integer, got ${typeName(v)} ${typeof v === 'number' || typeof v === 'bigint' ? v : ''}`.trimEnd());
}

function asIntTuple(v: PyValue, what: string, ctx: HandlerContext): number[] {
  if (!(v instanceof PyTuple || v instanceof PyList)) ctx.fail(`${what} must be a tuple, got ${typeName(v)}`);
  const items = (v as PyTuple).items;
  if (items.length > MAX_RANK) ctx.fail(`${what} has ${items.length} dimensions (at most ${MAX_RANK})`);
  return items.map((x, i) => asInt(x, `${what}[${i}]`, ctx));
}

/** A str, or a Python 2 str that was loaded as bytes; null otherwise. */
export function asText(v: PyValue): string | null {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1');
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

/** torch._utils._rebuild_tensor(storage, offset, size, stride). */
export function rebuildTensorV1(a: PyValue[], ctx: HandlerContext): PyValue {
  argCount(a, 4, 4, '_rebuild_tensor', ctx);
  return rebuildTensor(a, ctx);
}

/** torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]). */
export function rebuildTensorV2(a: PyValue[], ctx: HandlerContext): PyValue {
  argCount(a, 4, 7, '_rebuild_tensor_v2', ctx);
  return rebuildTensor(a, ctx);
}

/** torch._utils._rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype[, metadata]). */
export function rebuildTensorV3(a: PyValue[], ctx: HandlerContext): PyValue {
  argCount(a, 7, 8, '_rebuild_tensor_v3', ctx);
  return rebuildTensor(a, ctx, torchDType(a[6], ctx));
}

/** torch._utils._rebuild_parameter(data, requires_grad, hooks): the tensor itself. */
export function rebuildParameter(a: PyValue[], ctx: HandlerContext): PyValue {
  argCount(a, 1, 3, '_rebuild_parameter', ctx);
  return tensorArg(a[0], ctx, '_rebuild_parameter');
}

/** torch._utils._rebuild_parameter_with_state(data, requires_grad, hooks, state): the tensor itself. */
export function rebuildParameterWithState(a: PyValue[], ctx: HandlerContext): PyValue {
  argCount(a, 1, 4, '_rebuild_parameter_with_state', ctx);
  return tensorArg(a[0], ctx, '_rebuild_parameter_with_state');
}

/**
 * torch._tensor._rebuild_from_type_v2(func, type, args, state): tensor subclasses and tensors with
 * Python attributes. Only plain tensors and parameters are accepted; `func` must itself be an
 * allowlisted global with a handler to be called.
 */
export function rebuildFromType(a: PyValue[], ctx: HandlerContext): PyValue {
  argCount(a, 3, 4, '_rebuild_from_type_v2', ctx);
  const [func, type, args] = a;
  if (!(type instanceof PyGlobal) || !TENSOR_TYPES.has(type.name)) ctx.fail(`unsupported tensor type ${typeName(type)}`);
  if (!(func instanceof PyGlobal) || func.handler.call === undefined) ctx.fail(`${typeName(func)} is not callable`);
  if (!(args instanceof PyTuple)) ctx.fail('_rebuild_from_type_v2 arguments must be a tuple');
  return tensorArg((func as PyGlobal).handler.call!((args as PyTuple).items, ctx), ctx, '_rebuild_from_type_v2');
}

/** torch.Size(iterable): a tuple of non-negative ints. */
export function torchSize(a: PyValue[], ctx: HandlerContext): PyValue {
  argCount(a, 0, 1, 'torch.Size', ctx);
  return new PyTuple(a.length === 0 ? [] : asIntTuple(a[0], 'torch.Size', ctx));
}
