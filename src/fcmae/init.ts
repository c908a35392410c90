/**
 * FCMAE weight init (FB2 models/fcmae.py _init_weights, applied after the sparse encoder's own init;
 * ../shared/FCMAE.md sec. 3), by our parameter names:
 *
 *   'official'  stem conv, encoder dwconv and Linear, proj, pred, decoder dwconv: trunc_normal std 1
 *               (timm's default, bounds +-2); downsample convs std 0.02; decoder Linear: PyTorch's
 *               default U(+-1/sqrt(fan_in)) for weight and bias; mask_token N(0, 0.02);
 *               LayerNorm 1 / 0; GRN 0; other biases 0
 *   'convnext'  the ConvNeXt convention instead (std 0.02 for every conv / Linear weight, decoder too):
 *               FB2 issue #64 reports NaN with the std-1 "double initialisation"
 */
import * as tf from '@tensorflow/tfjs-core';

export type FcmaeInit = 'official' | 'convnext';

function nameSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Initial value of one FCMAE parameter (TF.js layout `shape`). */
export function fcmaeInitValue(name: string, shape: number[], init: FcmaeInit, seed: number): tf.Tensor {
  const s = nameSeed(seed, name);
  const isDecoder = name.startsWith('decoder.');
  if (name === 'mask_token') return tf.randomNormal(shape, 0, 0.02, 'float32', s);
  if (/norm\.weight$/.test(name)) return tf.ones(shape);
  if (/grn\./.test(name)) return tf.zeros(shape);
  const linearLike = /mlp\.fc[12]\.(weight|bias)$/.test(name);
  if (isDecoder && linearLike && init === 'official') {
    // fc1: D -> 4D, fc2: 4D -> D (weights [in, out]); a bias's fan-in is its layer's input width.
    const fanIn = name.endsWith('weight') ? shape[0] : name.includes('fc1') ? shape[0] / 4 : shape[0] * 4;
    const b = 1 / Math.sqrt(fanIn);
    return tf.randomUniform(shape, -b, b, 'float32', s);
  }
  if (name.endsWith('bias')) return tf.zeros(shape);
  const std = init === 'official' && !/downsample\.conv/.test(name) ? 1 : 0.02;
  // timm trunc_normal_ cuts at +-2 absolute: at std 1 that is +-2 std (tf.truncatedNormal); at 0.02 never.
  return std === 1 ? tf.truncatedNormal(shape, 0, 1, 'float32', s) : tf.randomNormal(shape, 0, std, 'float32', s);
}
