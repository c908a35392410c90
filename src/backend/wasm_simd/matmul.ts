/**
 * Matrix products for the single-threaded wasm backend, from gemm.wat: `_FusedMatMul` (bias, no
 * activation) and `BatchMatMul`, float32, one right-hand matrix [K, N] with N % 8 == 0; A or B
 * (not both) may be transposed (gemm_tn / gemm_nt: the gradient products, no transpose materialised).
 *
 * XNNPACK (the package's kernel) packs each right-hand matrix into its own layout and caches it per
 * tensor, so every ConvNeXt MLP weight lives twice on the heap (+100 MB for ConvNeXt-T; in training
 * each step's gradient products pack their B anew). gemm.wat reads B in place through a
 * 16 KB scratch panel and packs 64-row blocks of A into a 128 KB scratch reused by every panel
 * (both allocated once per backend), at XNNPACK's single-thread speed or better, with the same
 * bits. With the
 * threaded build the product is split over our kernel threads (pool.ts); without them XNNPACK splits
 * it across its threads and keeps the call (but the ones below).
 * NOTE: the package's _FusedMatMul adds the bias wrongly when A is batched ([B>1, M, K] against one
 * [1, K, N]); this kernel takes that case and gets it right (test/backend/simd.test.ts). The
 * package's transposed products are ~10x slower than a plain one (src/layers/linear.ts): taken on
 * both builds.
 */
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { settings } from '../../env';
import { HeapBackend, SimdExports, heapOffset, kernelThreadsOf, simdKernelsFor } from './kernels';

/** Rows of B per copied panel: 512 x 8 floats = 16 KB, an L1-sized scratch. */
export const KC = 512;

/** Rows of A (columns of A^T) per packed block in gemm.wat: 64 x 512 floats = 128 KB, L2-sized. */
export const MC = 64;

const scratch = new WeakMap<object, { panel: number; packedA: number }>();

/** One thread's gemm.wat scratch on the heap: the B panel (32 * KC bytes) and packed A (4 * MC * KC bytes); never freed. */
export function allocGemmScratch(backend: HeapBackend): { panel: number; packedA: number } {
  return { panel: backend.wasm._malloc(32 * KC), packedA: backend.wasm._malloc(4 * MC * KC) };
}

function scratchesFor(backend: HeapBackend): { panel: number; packedA: number } {
  let s = scratch.get(backend);
  if (s === undefined) {
    s = allocGemmScratch(backend);
    scratch.set(backend, s);
  }
  return s;
}

/** The backend's gemm scratch panel (32 * KC bytes, allocated once per backend, never freed). */
export function scratchFor(backend: HeapBackend): number {
  return scratchesFor(backend).panel;
}

/** gemm.wat's packed-A scratch (4 * MC * KC bytes, allocated once per backend, never freed). */
export function packedAFor(backend: HeapBackend): number {
  return scratchesFor(backend).packedA;
}

/**
 * Runs one of gemm.wat's products with the backend's scratch: C [m, n] = op(A) op(B) (+ bias; bias 0:
 * none, -1: C +=); `ptrs` are the heap offsets of A, B, the bias and C.
 */
export function gemmOn(
  backend: HeapBackend,
  kernels: SimdExports,
  product: 'gemm_f32' | 'gemm_tn_f32' | 'gemm_nt_f32',
  ptrs: number[],
  m: number,
  k: number,
  n: number,
): void {
  const [a, b, bias, c] = ptrs;
  kernels[product](a, b, bias, c, m, k, n, scratchFor(backend), KC, packedAFor(backend), MC);
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
  const ta = !!attrs.transposeA;
  const tb = !!attrs.transposeB;
  if (!a || !b || preluActivationWeights || (ta && tb)) return null;
  if (attrs.activation !== undefined && attrs.activation !== 'linear') return null;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || (bias && bias.dtype !== 'float32')) return null;
  if (a.shape.length < 2 || a.shape.length > 3 || b.shape.length < 2 || b.shape.length > 3) return null;
  if (b.shape.length === 3 && b.shape[0] !== 1) return null;
  const batchedA = a.shape.length === 3 && a.shape[0] > 1;
  if (ta && batchedA) return null; // A^T of each batch: not one product
  const [b0, b1] = b.shape.slice(-2);
  const [k, n] = tb ? [b1, b0] : [b0, b1];
  const [a0, a1] = a.shape.slice(-2);
  const ak = ta ? a0 : a1;
  const m = ta ? a1 : tf.util.sizeFromShape(a.shape) / k; // every batch of A against the one B
  if (ak !== k || n % 8 !== 0 || m === 0 || k === 0) return null;
  if (bias && tf.util.sizeFromShape(bias.shape) !== n) return null;
  // Threaded build: with our kernel threads, plain products run on gemm.wat split over them (no packed
  // weight copies, -109 MB for ConvNeXt-T, and no XNNPACK pthread left spin-waiting after each product
  // on the core our kernel thread needs: bench/results/inference-threads-2026-12-02.md), unless
  // $CONVNEXT_XNNPACK_MATMUL; without them XNNPACK splits plain products, except where it gets it wrong.
  const ours = kernelThreadsOf(args.backend) !== null && !settings.xnnpackMatMul();
  if (getThreadsCount() > 1 && !ta && !tb && !(bias && batchedA) && !ours) return null;
  const kernels = simdKernelsFor(args.backend);
  if (!kernels) return null;
  const backend = args.backend as HeapBackend;
  const outShape = ta ? [...a.shape.slice(0, -2), m, n] : [...a.shape.slice(0, -1), n];
  const out = backend.makeOutput(outShape, 'float32');
  const [pa, pb, pbias, pc] = [heapOffset(backend, a), heapOffset(backend, b), bias ? heapOffset(backend, bias) : 0, heapOffset(backend, out)];
  gemmOn(backend, kernels, ta ? 'gemm_tn_f32' : tb ? 'gemm_nt_f32' : 'gemm_f32', [pa, pb, pbias, pc], m, k, n);
  return out;
}
