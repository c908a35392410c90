/**
 * The end of a ConvNeXt V1 block with drop path off (eval): layer scale and the residual sum as one
 * op,
 *
 *   out = x + gamma * y        x: the block's input, y: its branch [..., C]; gamma [C]
 *
 * A kernel of its own (SCALED_RESIDUAL_KERNEL): backends that register one (wasm: src/backend/wasm_simd,
 * one pass, shared among the kernel threads) run it, the others the composite (tf.mul, tf.add), with
 * the same bits on wasm. The gradient is registered for the kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { SCALED_RESIDUAL_KERNEL } from '../kernel_names';

/** x + gamma * y from tfjs-core ops (two kernels), any backend: layerScale then the sum, as the block wrote them. */
export function scaledResidualComposite<T extends tf.Tensor>(x: T, y: T, gamma: tf.Tensor1D): T {
  return tf.tidy(() => tf.add(x, tf.mul(y, gamma)) as T);
}

/**
 * @param x     [..., C] the residual (the block's input)
 * @param y     [..., C] the branch, the same shape
 * @param gamma [C] the layer scale
 * @returns     x + gamma * y, the shape of x
 */
export function scaledResidual<T extends tf.Tensor>(x: T, y: T, gamma: tf.Tensor1D): T {
  const c = x.shape[x.rank - 1];
  const fast =
    [x, y, gamma].every((t) => t.dtype === 'float32') &&
    tf.util.arraysEqual(x.shape, y.shape) &&
    x.size > 0 &&
    c % 4 === 0 &&
    gamma.size === c &&
    tf.getKernel(SCALED_RESIDUAL_KERNEL, tf.getBackend());
  if (fast) return tf.engine().runKernel(SCALED_RESIDUAL_KERNEL, { x, y, gamma }) as T;
  return scaledResidualComposite(x, y, gamma);
}

// dx = dz, dy = dz * gamma, dgamma = sum(dz * y) over every axis but the last: tf.add's and
// tf.mul's gradients, as the composite has them.
tf.registerGradient({
  kernelName: SCALED_RESIDUAL_KERNEL,
  inputsToSave: ['y', 'gamma'],
  gradFunc: (dz, saved) => {
    const [y, gamma] = saved;
    const d = dz as tf.Tensor;
    const leading = Array.from({ length: y.rank - 1 }, (_, i) => i);
    return {
      x: () => tf.reshape(d, d.shape),
      y: () => tf.mul(d, gamma),
      gamma: () => tf.reshape(tf.sum(tf.mul(d, y), leading), gamma.shape),
    };
  },
});
