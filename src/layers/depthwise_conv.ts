/**
 * Depthwise convolution of ConvNeXt blocks: k x k (7 x 7 in the paper), stride 1, padding (k-1)/2,
 * one filter per channel, with bias. PyTorch's padding 3 at stride 1 is exactly TF's 'same'.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '../errors';

/**
 * @param x      [N, H, W, C] NHWC
 * @param weight [k, k, C, 1] (PyTorch [C, 1, k, k] transposed [2, 3, 0, 1])
 * @param bias   [C]
 * @returns      [N, H, W, C]
 */
export function depthwiseConv(x: tf.Tensor4D, weight: tf.Tensor4D, bias: tf.Tensor1D): tf.Tensor4D {
  const [kh, kw, c, mult] = weight.shape;
  if (kh !== kw || kh % 2 !== 1 || mult !== 1 || c !== x.shape[3]) {
    throw new ShapeError(`depthwiseConv: weight must be [k, k, C, 1] with odd k and C = ${x.shape[3]} input channels, got [${weight.shape}]`);
  }
  return tf.fused.depthwiseConv2d({ x, filter: weight, strides: 1, pad: 'same', bias });
}
