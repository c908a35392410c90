/**
 * Layer scale (CaiT; ConvNeXt V1): a learnable per-channel multiplier on the residual branch,
 * initialised to 1e-6 so that each block starts near the identity.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * @param x     [..., C]
 * @param gamma [C]
 * @returns     x * gamma, broadcast over the last axis
 */
export function layerScale<T extends tf.Tensor>(x: T, gamma: tf.Tensor1D): T {
  return tf.mul(x, gamma);
}
