/**
 * Exact GELU (PyTorch nn.GELU default, approximate='none'):
 *
 *   gelu(x) = 0.5 * x * (1 + erf(x / sqrt(2)))
 *
 * Not the tanh approximation (tfjs-layers 'gelu_new'). TF.js erf is the A&S 7.1.26 polynomial,
 * within ~1.5e-7 of the true erf, which is well inside the parity tolerance.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Exact erf GELU, elementwise; any shape. */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))) as T);
}
