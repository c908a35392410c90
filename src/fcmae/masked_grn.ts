/**
 * GRN over visible positions only, for the dense-masked FCMAE encoder (FB2 TRAINING.md "Implementing
 * FCMAE with Masked Convolution in JAX"; FB2 models/utils.py MinkowskiGRN), NHWC:
 *
 *   G  = sqrt( sum_{visible (h, w)} x^2 + 1e-6 )    per image and channel ('image', the JAX recipe
 *                                                   that trained the released weights), or pooled
 *                                                   over every visible site of the batch ('batch',
 *                                                   the PyTorch MinkowskiGRN)         [N|1, 1, 1, C]
 *   Nx = G / (mean_c(G) + 1e-6)
 *   y  = gamma * (x * Nx) + beta + x
 *
 * The 1e-6 inside the sqrt is the JAX form: without it the gradient of sqrt is NaN for a channel
 * that is zero at every visible site (MinkowskiGRN has none; the difference is 1e-6 on a sum of
 * squares). Masked sites of y hold garbage (beta, ...): the caller masks the block output.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Where GRN takes its statistics: per image (default, JAX) or pooled over the batch (PyTorch sparse). */
export type GrnStats = 'image' | 'batch';

/**
 * @param x       [N, H, W, C] NHWC
 * @param visible [N, H, W, 1], 1 = visible
 * @param gamma   [C]
 * @param beta    [C]
 */
export function maskedGrn(x: tf.Tensor4D, visible: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, stats: GrnStats = 'image', eps = 1e-6): tf.Tensor4D {
  return tf.tidy(() => {
    const axes = stats === 'batch' ? [0, 1, 2] : [1, 2];
    const g = tf.sqrt(tf.add(tf.sum(tf.mul(tf.square(x), visible), axes, true), eps));
    const nx = tf.div(g, tf.add(tf.mean(g, -1, true), eps));
    return tf.add(tf.add(tf.mul(gamma, tf.mul(x, nx)), beta), x) as tf.Tensor4D;
  });
}
