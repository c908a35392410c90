/**
 * Tensor materialisation: the selected TensorRefs are read and decoded one storage at a time (so the
 * optimizer state or a model_ema next to the model costs nothing and memory stays near the size
 * of the decoded tensors), then their views (offset, size, stride, as torch.as_strided) are turned
 * into contiguous C-order arrays with the one strided gather of src/util/ndarray.ts.
 */
import { stridedGather } from '../../src/util/ndarray';
import { decodeElements } from '../dtype';
import { CheckpointError } from '../errors';
import { TensorRef } from '../pickle/torch_rebuild';
import { ITEM_SIZE, RawTensor, SourceDType } from '../types';
import { StorageSource } from './storage';

type Decoded = RawTensor['data'];

function emptyOf(dtype: SourceDType, n: number): Decoded {
  if (dtype === 'bool') return new Uint8Array(n);
  if (dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16' || dtype === 'float64') return new Float32Array(n);
  return new Int32Array(n);
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

/** Offset (in root-storage elements) of a view's last element. */
function lastElement(t: TensorRef, start: number): number {
  let last = start;
  for (let i = 0; i < t.shape.length; i++) last += (t.shape[i] - 1) * t.stride[i];
  return last;
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
      lo = Math.min(lo, start);
      hi = Math.max(hi, lastElement(t, start) + 1);
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
      const byteStart = start * item;
      const byteLen = (lastElement(t, start) + 1 - start) * item;
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
        // Offsets are relative to the decoded range, which starts at the view's first element.
        data = stridedGather(decoded, t.shape, t.stride);
      }
      results.set(name, { shape: t.shape, dtype: t.dtype, data });
    }
  }
  // Keep the state dict's order, not the storage grouping order.
  for (const [name] of entries) out.set(name, results.get(name)!);
  return out;
}
