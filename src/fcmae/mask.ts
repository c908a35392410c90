/**
 * FCMAE random patch masks (Woo et al. 2023, Sec. 3; FB2 models/fcmae.py gen_random_mask /
 * upsample_mask). Convention as the official code: 1 = masked (removed), 0 = visible.
 *
 *   L = (H/p)^2 patches, p = 32 (the encoder's total stride), patch l = i * (W/p) + j (row-major)
 *   len_keep = int(L * (1 - ratio)); the len_keep patches with the smallest noise are visible
 *
 * The official draw is torch.randn + argsort; ours is a seeded Gaussian (seedrandom, Box-Muller) +
 * the same argsort rule, so the masks have the same distribution, not the same bits (inject a
 * mask for parity). Upsampling to a stage is a nearest-neighbour block copy (repeat_interleave
 * along H then W), returned here as the NHWC *visible* indicator v = 1 - m, [N, h*s, w*s, 1].
 */
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import { FcmaeError } from '../errors';

/** Patch size of FCMAE: the total stride of the ConvNeXt encoder. */
export const FCMAE_PATCH = 32;

/** A batch of patch masks: [N, L] row-major, 1 = masked. */
export interface PatchMask {
  n: number;
  /** Patches per image, a square of the patch-grid side. */
  l: number;
  data: Float32Array;
}

/** int(L * (1 - ratio)) as Python truncates it. */
export function visibleCount(l: number, ratio: number): number {
  return Math.trunc(l * (1 - ratio));
}

/** Side of the square patch grid of L patches; throws when L is not a square. */
export function gridSide(l: number): number {
  const g = Math.round(Math.sqrt(l));
  if (g * g !== l || l <= 0) throw new FcmaeError(`mask: L = ${l} patches is not a square patch grid`);
  return g;
}

/**
 * One random mask per image, seeded: exactly int(L (1 - ratio)) visible patches in every row.
 * @param n     images
 * @param l     patches per image ((H/32)^2)
 * @param ratio masking ratio in [0, 1) (0.6 in the paper)
 */
export function randomMask(n: number, l: number, ratio: number, seed: number | string): PatchMask {
  gridSide(l);
  if (!(ratio >= 0 && ratio < 1)) throw new FcmaeError(`mask ratio must be in [0, 1), got ${ratio}`);
  const rng = seedrandom(String(seed));
  const keep = visibleCount(l, ratio);
  const data = new Float32Array(n * l).fill(1);
  for (let b = 0; b < n; b++) {
    const noise = new Float64Array(l);
    for (let i = 0; i < l; i++) noise[i] = Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
    const order = Array.from({ length: l }, (_, i) => i).sort((a, c) => noise[a] - noise[c] || a - c);
    for (let k = 0; k < keep; k++) data[b * l + order[k]] = 0;
  }
  return { n, l, data };
}

/** Checks a given mask: [N, L] of 0/1 with L the patch count of an h x w input. */
export function checkMask(mask: PatchMask, n: number, h: number, w: number): void {
  if (h !== w || h % FCMAE_PATCH !== 0) throw new FcmaeError(`FCMAE input must be square with a side divisible by ${FCMAE_PATCH}, got ${h}x${w}`);
  const l = (h / FCMAE_PATCH) ** 2;
  if (mask.n !== n || mask.l !== l || mask.data.length !== n * l) {
    throw new FcmaeError(`mask must be [${n}, ${l}] for ${n} image(s) of ${h}x${w} (L = (H/32)^2), got [${mask.n}, ${mask.l}]`);
  }
  for (let i = 0; i < mask.data.length; i++) {
    if (mask.data[i] !== 0 && mask.data[i] !== 1) throw new FcmaeError(`mask entries must be 0 (visible) or 1 (masked), found ${mask.data[i]} at ${i}`);
  }
}

/**
 * Visible indicator of the mask upsampled by `scale`: [N, g*scale, g*scale, 1], 1 = visible.
 * scale 8 gives the stage-1 (stride 4) grid, 4/2/1 stages 2/3/4.
 */
export function visibleMap(mask: PatchMask, scale: number): tf.Tensor4D {
  const g = gridSide(mask.l);
  const s = g * scale;
  const out = new Float32Array(mask.n * s * s);
  for (let b = 0; b < mask.n; b++)
    for (let y = 0; y < s; y++)
      for (let x = 0; x < s; x++) out[(b * s + y) * s + x] = 1 - mask.data[b * mask.l + Math.floor(y / scale) * g + Math.floor(x / scale)];
  return tf.tensor4d(out, [mask.n, s, s, 1]);
}

/** The per-stage visible maps of a 4-stage encoder: scales 8, 4, 2, 1 (strides 4, 8, 16, 32). */
export function stageVisibleMaps(mask: PatchMask): tf.Tensor4D[] {
  return [8, 4, 2, 1].map((s) => visibleMap(mask, s));
}
