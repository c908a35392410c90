/**
 * The AdamW update kernel (ADAMW_KERNEL, see src/train/adamw.ts) for the wasm backend, from
 * adamw.wat: one pass per parameter for the new (p, m, v) instead of ~13 elementwise kernels, with
 * the same float32 operations in the same order (the same bits). In a ConvNeXt-atto step (128
 * parameters) that removes ~1700 kernel calls, each with its own heap allocation and JS dispatch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ADAMW_KERNEL } from '../../kernel_names';
import { HeapBackend, heapOffset, simdKernelsFor } from './kernels';

/** Attributes of one update, as src/train/adamw.ts computes them (JS doubles, rounded to float32 here). */
export interface AdamWKernelAttrs {
  beta1: number;
  beta2: number;
  eps: number;
  /** 1 - lr * weightDecay, used when decay is true. */
  keep: number;
  decay: boolean;
  /** sqrt(1 - beta2^t). */
  bc2Sqrt: number;
  /** lr / (1 - beta1^t). */
  step: number;
}

export const adamwKernelConfig: tf.KernelConfig = {
  kernelName: ADAMW_KERNEL,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const [p, m, v, g] = [inputs.p, inputs.m, inputs.v, inputs.g] as tf.TensorInfo[];
    const a = attrs as unknown as AdamWKernelAttrs;
    const kernels = simdKernelsFor(backend);
    const n = tf.util.sizeFromShape(p.shape);
    if (!kernels || ![p, m, v, g].every((t) => t.dtype === 'float32' && tf.util.sizeFromShape(t.shape) === n)) {
      throw new Error(`${ADAMW_KERNEL}: needs float32 p, m, v, g of one size on the wasm backend`);
    }
    const b = backend as HeapBackend;
    const [p2, m2, v2] = [b.makeOutput(p.shape, 'float32'), b.makeOutput(p.shape, 'float32'), b.makeOutput(p.shape, 'float32')];
    kernels.adamw_f32(
      heapOffset(b, p),
      heapOffset(b, m),
      heapOffset(b, v),
      heapOffset(b, g),
      heapOffset(b, p2),
      heapOffset(b, m2),
      heapOffset(b, v2),
      n,
      ...adamwConstants(a),
    );
    return [p2, m2, v2];
  },
};

/** adamw_f32's constant arguments (b1, 1 - b1, b2, 1 - b2, keep, bc2, eps, step, decay) from the attributes. */
export function adamwConstants(a: AdamWKernelAttrs): [number, number, number, number, number, number, number, number, number] {
  return [a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.keep, a.bc2Sqrt, a.eps, a.step, a.decay ? 1 : 0];
}
