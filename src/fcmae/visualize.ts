/**
 * Reconstruction pictures of FCMAE (as the MAE/FCMAE visualisation notebooks draw them): per image a
 * row  original | masked | reconstruction | reconstruction with the visible patches pasted back.
 * The norm-pix prediction is un-normalised with each patch's own mean and (unbiased) std of the
 * original, y = pred * sqrt(var + 1e-6) + mean, then ImageNet de-normalisation to 8-bit RGB.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RgbImage } from '../data/image';
import { IMAGENET_MEAN, IMAGENET_STD } from '../model/preprocessing';
import { patchStats, patchify, unpatchify } from './loss';
import { PatchMask, visibleMap } from './mask';

/**
 * @param x    [N, H, W, 3] normalised input
 * @param pred [N, L, 3072] decoder output
 * @param normPix whether pred is in norm-pix units (the default training target)
 * @returns the four panels per image, NHWC in normalised units: [N, H, W, 3] each
 */
export function reconstructionPanels(
  x: tf.Tensor4D,
  pred: tf.Tensor3D,
  mask: PatchMask,
  normPix = true,
): { masked: tf.Tensor4D; recon: tf.Tensor4D; pasted: tf.Tensor4D } {
  return tf.tidy(() => {
    const [, h] = x.shape;
    let p: tf.Tensor3D = pred;
    if (normPix) {
      const { mean, variance } = patchStats(patchify(x));
      p = tf.add(tf.mul(pred, tf.sqrt(tf.add(variance, 1e-6))), mean) as tf.Tensor3D;
    }
    const recon = unpatchify(p);
    const vis = visibleMap(mask, h / Math.sqrt(mask.l)); // pixel-level, 1 = visible
    // masked panel: masked patches set to the dataset mean (0 after normalisation, i.e. grey)
    const masked = tf.mul(x, vis) as tf.Tensor4D;
    const pasted = tf.add(tf.mul(x, vis), tf.mul(recon, tf.sub(1, vis))) as tf.Tensor4D;
    return { masked, recon, pasted };
  });
}

/** Normalised NHWC [1, H, W, 3] values (one image) -> 8-bit RGB. */
function toRgb(data: Float32Array | Int32Array | Uint8Array, offset: number, h: number, w: number): RgbImage {
  const out = new Uint8Array(h * w * 3);
  for (let i = 0; i < h * w * 3; i++) {
    const c = i % 3;
    const v = (data[offset + i] * IMAGENET_STD[c] + IMAGENET_MEAN[c]) * 255;
    out[i] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
  }
  return { width: w, height: h, data: out };
}

/** A grid of rows (one per image) of the four panels, with a 4-px white gutter. */
export function reconstructionGrid(x: tf.Tensor4D, pred: tf.Tensor3D, mask: PatchMask, normPix = true): RgbImage {
  const { masked, recon, pasted } = reconstructionPanels(x, pred, mask, normPix);
  try {
    const [n, h, w] = x.shape;
    const gut = 4;
    const gw = 4 * w + 5 * gut;
    const gh = n * h + (n + 1) * gut;
    const grid = new Uint8Array(gw * gh * 3).fill(255);
    const panels = [x, masked, recon, pasted].map((t) => t.dataSync());
    for (let b = 0; b < n; b++)
      panels.forEach((d, col) => {
        const img = toRgb(d, b * h * w * 3, h, w);
        const x0 = gut + col * (w + gut);
        const y0 = gut + b * (h + gut);
        for (let yy = 0; yy < h; yy++) grid.set(img.data.subarray(yy * w * 3, (yy + 1) * w * 3), ((y0 + yy) * gw + x0) * 3);
      });
    return { width: gw, height: gh, data: grid };
  } finally {
    tf.dispose([masked, recon, pasted]);
  }
}
