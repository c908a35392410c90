/**
 * Matrix products for the single-threaded wasm backend, from gemm.wat: `_FusedMatMul` (bias, no
 * activation) and `BatchMatMul`, float32, no transposes, one right-hand matrix [K, N] with N % 8 == 0.
 *
 * XNNPACK (the package's kernel) packs each right-hand matrix into its own layout and caches it per
 * tensor, so every ConvNeXt MLP weight lives twice on the heap (+100 MB for ConvNeXt-T; in training
 * each step's gradient products pack their B anew). gemm.wat reads B in place through a
 * 16 KB scratch panel, at XNNPACK's single-thread speed or better, with the same bits. With the
 * threaded build XNNPACK splits a product across threads and keeps the call (but the one below).
 * NOTE: the package's _FusedMatMul adds the bias wrongly when A is batched ([B>1, M, K] against one
 * [1, K, N]); this kernel takes that case and gets it right (test/backend/simd.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { HeapBackend, heapOffset, simdKernelsFor } from './kernels';

/** Rows of B per copied panel: 512 x 8 floats = 16 KB, an L1-sized scratch. */
const KC = 512;

const scratch = new WeakMap<object, number>();

function scratchFor(backend: HeapBackend): number {
  let p = scratch.get(backend);
  if (p === undefined) {
    p = backend.wasm._malloc(32 * KC);
    scratch.set(backend, p);
  }
  return p;
}

interface MatMulAttrs {
  transposeA?: boolean;
  transposeB?: boolean;
  activation?: string;
}

/** Runs gemm.wat if this call is one it takes; returns null otherwise. */
export function simdMatMul(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo | null {
  const { a, b, bias, preluActivationWeights } = args.inputs;
  const attrs = (args.attrs ?? {}) as unknown as MatMulAttrs;
  if (!a || !b || preluActivationWeights || attrs.transposeA || attrs.transposeB) return null;
  if (attrs.activation !== undefined && attrs.activation !== 'linear') return null;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || (bias && bias.dtype !== 'float32')) return null;
  if (a.shape.length < 2 || a.shape.length > 3 || b.shape.length < 2 || b.shape.length > 3) return null;
  if (b.shape.length === 3 && b.shape[0] !== 1) return null;
  const [k, n] = b.shape.slice(-2);
  const m = tf.util.sizeFromShape(a.shape) / k; // every batch of A against the one B
  if (a.shape[a.shape.length - 1] !== k || n % 8 !== 0 || m === 0 || k === 0) return null;
  if (bias && tf.util.sizeFromShape(bias.shape) !== n) return null;
  // Threaded build: XNNPACK splits the product across threads, except where it gets it wrong.
  const batchedA = a.shape.length === 3 && a.shape[0] > 1;
  if (getThreadsCount() > 1 && !(bias && batchedA)) return null;
  const kernels = simdKernelsFor(args.backend);
  if (!kernels) return null;
  const backend = args.backend as HeapBackend;
  const out = backend.makeOutput([...a.shape.slice(0, -1), n], 'float32');
  kernels.gemm_f32(
    heapOffset(backend, a),
    heapOffset(backend, b),
    bias ? heapOffset(backend, bias) : 0,
    heapOffset(backend, out),
    m,
    k,
    n,
    scratchFor(backend),
    KC,
  );
  return out;
}
