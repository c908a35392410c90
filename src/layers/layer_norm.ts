/**
 * LayerNorm over the last (channel) axis of an NHWC or [N, C] tensor, as PyTorch's nn.LayerNorm and
 * ConvNeXt's channels_first LayerNorm compute it: biased variance, eps inside the square root.
 *
 *   y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias        (statistics over axis -1)
 *
 * NOTE: tf.layers.layerNormalization defaults to eps 1e-3; ConvNeXt needs 1e-6 (HF's final LN 1e-12),
 * so the op is written from tfjs-core ops with the eps passed explicitly.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * @param x      [..., C] (NHWC feature map or pooled [N, C])
 * @param weight [C]
 * @param bias   [C]
 * @param eps    added to the variance; ConvNeXt uses 1e-6
 * @returns      same shape as x
 */
export function layerNorm<T extends tf.Tensor>(x: T, weight: tf.Tensor1D, bias: tf.Tensor1D, eps = 1e-6): T {
  return tf.tidy(() => {
    const mean = tf.mean(x, -1, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), -1, true);
    const normed = tf.mul(centered, tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(normed, weight), bias) as T;
  });
}
