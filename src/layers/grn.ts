/**
 * Global Response Normalization (ConvNeXt V2, FB2 models/utils.py), on NHWC:
 *
 *   G  = ||x||_2 over (H, W)                  per sample and channel, [N, 1, 1, C]
 *   Nx = G / (mean_c(G) + eps)                divisive normalisation across channels
 *   y  = gamma * (x * Nx) + beta + x
 *
 * The paper divides by the sum over channels; the released code (followed here) by the mean.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * @param x     [N, H, W, C] NHWC
 * @param gamma [C] (FB2 stores [1, 1, 1, C])
 * @param beta  [C]
 * @param eps   1e-6 in every reference implementation
 * @returns     [N, H, W, C]
 */
export function grn(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps = 1e-6): tf.Tensor4D {
  return tf.tidy(() => {
    const g = tf.sqrt(tf.sum(tf.square(x), [1, 2], true));
    const nx = tf.div(g, tf.add(tf.mean(g, -1, true), eps));
    return tf.add(tf.add(tf.mul(gamma, tf.mul(x, nx)), beta), x) as tf.Tensor4D;
  });
}
