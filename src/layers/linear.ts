/**
 * Pointwise Linear layer of the inverted bottleneck (C -> 4C -> C): a matMul on the flattened
 * [N*H*W, C] view, with bias. Equivalent to PyTorch nn.Linear on NHWC and to timm's 1x1 conv MLP.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '../errors';

/**
 * @param x      [..., Cin] (e.g. NHWC [N, H, W, Cin] or [N, Cin])
 * @param weight [Cin, Cout] (PyTorch [Cout, Cin] transposed)
 * @param bias   [Cout]
 * @returns      [..., Cout]
 */
export function linear<T extends tf.Tensor>(x: T, weight: tf.Tensor2D, bias: tf.Tensor1D): T {
  const cin = x.shape[x.rank - 1];
  if (weight.shape[0] !== cin) {
    throw new ShapeError(`linear: input has ${cin} channels but weight is [${weight.shape}] (expected [${cin}, Cout])`);
  }
  return tf.tidy(() => {
    const flat = tf.reshape(x, [-1, cin]) as tf.Tensor2D;
    const y = tf.fused.matMul({ a: flat, b: weight, bias });
    return tf.reshape(y, [...x.shape.slice(0, -1), weight.shape[1]]) as T;
  });
}
