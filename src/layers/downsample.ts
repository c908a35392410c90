/**
 * Downsampling layer between stages: LayerNorm over channels first, then conv 2x2 stride 2 with bias
 * (C_i -> C_{i+1}). Norm-then-conv is the official order (FB downsample_layers.{1,2,3}).
 */
import * as tf from '@tensorflow/tfjs-core';
import { layerNorm } from './layer_norm';

/**
 * @param x          [N, H, W, Cin] NHWC
 * @param convWeight [2, 2, Cin, Cout] (PyTorch [Cout, Cin, 2, 2] transposed [2, 3, 1, 0])
 * @returns          [N, floor(H/2), floor(W/2), Cout]
 */
export function downsample(
  x: tf.Tensor4D,
  normWeight: tf.Tensor1D,
  normBias: tf.Tensor1D,
  convWeight: tf.Tensor4D,
  convBias: tf.Tensor1D,
  eps = 1e-6,
): tf.Tensor4D {
  return tf.tidy(() => {
    const s = convWeight.shape[0];
    const y = layerNorm(x, normWeight, normBias, eps);
    return tf.fused.conv2d({ x: y, filter: convWeight, strides: s, pad: 'valid', bias: convBias });
  });
}
