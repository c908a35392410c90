/**
 * ConvNeXt stem ("patchify"): conv 4x4 stride 4 (no padding, with bias) then LayerNorm over
 * channels. PyTorch's floor output size equals TF's 'valid'.
 */
import * as tf from '@tensorflow/tfjs-core';
import { layerNorm } from './layer_norm';

/**
 * @param x          [N, H, W, 3] NHWC image batch, normalised
 * @param convWeight [p, p, 3, C0] (PyTorch [C0, 3, p, p] transposed [2, 3, 1, 0]); p = patch size 4
 * @param convBias   [C0]
 * @returns          [N, floor(H/p), floor(W/p), C0]
 */
export function stem(x: tf.Tensor4D, convWeight: tf.Tensor4D, convBias: tf.Tensor1D, normWeight: tf.Tensor1D, normBias: tf.Tensor1D, eps = 1e-6): tf.Tensor4D {
  return tf.tidy(() => {
    const p = convWeight.shape[0];
    const y = tf.fused.conv2d({ x, filter: convWeight, strides: p, pad: 'valid', bias: convBias });
    return layerNorm(y, normWeight, normBias, eps);
  });
}
