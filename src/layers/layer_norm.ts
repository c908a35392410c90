/**
 * LayerNorm over the last (channel) axis of an NHWC or [N, C] tensor, as PyTorch's nn.LayerNorm and
 * ConvNeXt's channels_first LayerNorm compute it: biased variance, eps inside the square root.
 *
 *   y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias        (statistics over axis -1)
 *
 * NOTE: tf.layers.layerNormalization defaults to eps 1e-3; ConvNeXt needs 1e-6 (HF's final LN 1e-12),
 * so the op is written from tfjs-core ops with the eps passed explicitly. It is also a kernel of its
 * own (LAYER_NORM_KERNEL): backends that register one (wasm: src/backend/wasm_simd, one pass per row)
 * run it, the others the composite; the gradient is registered for the kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LAYER_NORM_KERNEL, LAYER_NORM_GRAD_KERNEL } from '../kernel_names';

/** LayerNorm from tfjs-core ops (nine kernels), any backend. */
export function layerNormComposite<T extends tf.Tensor>(x: T, weight: tf.Tensor1D, bias: tf.Tensor1D, eps = 1e-6): T {
  return tf.tidy(() => {
    const mean = tf.mean(x, -1, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), -1, true);
    const normed = tf.mul(centered, tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(normed, weight), bias) as T;
  });
}

/**
 * @param x      [..., C] (NHWC feature map or pooled [N, C])
 * @param weight [C]
 * @param bias   [C]
 * @param eps    added to the variance; ConvNeXt uses 1e-6
 * @returns      same shape as x
 */
export function layerNorm<T extends tf.Tensor>(x: T, weight: tf.Tensor1D, bias: tf.Tensor1D, eps = 1e-6): T {
  const c = x.shape[x.rank - 1];
  const fast =
    x.dtype === 'float32' &&
    c % 4 === 0 &&
    weight.size === c &&
    bias.size === c &&
    weight.dtype === 'float32' &&
    bias.dtype === 'float32' &&
    tf.getKernel(LAYER_NORM_KERNEL, tf.getBackend());
  if (fast) return tf.engine().runKernel(LAYER_NORM_KERNEL, { x, weight, bias }, { eps }) as T;
  return layerNormComposite(x, weight, bias, eps);
}

// With xhat = (x - mean) * rstd and g = dy * weight (sums over every axis but the last):
//   dbias = sum(dy),  dweight = sum(dy * xhat),  dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))
tf.registerGradient({
  kernelName: LAYER_NORM_KERNEL,
  inputsToSave: ['x', 'weight'],
  gradFunc: (dy, saved, attrs) => {
    const [x, weight] = saved;
    const d = dy as tf.Tensor;
    const eps = (attrs as unknown as { eps: number }).eps;
    if (d.dtype === 'float32' && tf.getKernel(LAYER_NORM_GRAD_KERNEL, tf.getBackend())) {
      const [dx, dweight, dbias] = tf.engine().runKernel(LAYER_NORM_GRAD_KERNEL, { x, weight, dy: d }, { eps }) as tf.Tensor[];
      return { x: () => dx, weight: () => tf.reshape(dweight, weight.shape), bias: () => tf.reshape(dbias, weight.shape) };
    }
    const leading = Array.from({ length: x.rank - 1 }, (_, i) => i);
    const stats = () => {
      const centered = tf.sub(x, tf.mean(x, -1, true));
      const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centered), -1, true), eps));
      return { xhat: tf.mul(centered, rstd), rstd };
    };
    return {
      x: () => {
        const { xhat, rstd } = stats();
        const g = tf.mul(d, weight);
        const inner = tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xhat, tf.mean(tf.mul(g, xhat), -1, true)));
        return tf.mul(rstd, inner);
      },
      weight: () => tf.sum(tf.mul(d, stats().xhat), leading),
      bias: () => tf.sum(d, leading),
    };
  },
});
