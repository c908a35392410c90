/**
 * Reconstruction with a pretrained FCMAE (library side of `convnext reconstruct`): loads a model
 * from a pretraining run or an official FCMAE checkpoint, masks (given or seeded random), and
 * returns the loss, the raw decoder output [N, L, 32*32*3] (official patchify order) and the grid.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { RgbImage } from '../data/image';
import { readSafetensorsHeader } from '../../weights-converter/safetensors';
import { FcmaeError } from '../errors';
import { Fcmae } from './fcmae';
import { loadFcmaeCheckpoint } from './load';
import { FCMAE_PATCH, PatchMask, checkMask, randomMask } from './mask';
import { GrnStats } from './masked_grn';
import { fcmaeFromRun } from './pretrain';
import { reconstructionGrid } from './visualize';

export interface LoadFcmaeOptions {
  grnStats?: GrnStats;
  maskRatio?: number;
}

function isOwnRun(source: string): boolean {
  if (fs.statSync(source).isDirectory()) return fs.existsSync(path.join(source, 'checkpoint.safetensors'));
  if (!source.endsWith('.safetensors')) return false;
  try {
    return 'convnext_fcmae' in (readSafetensorsHeader(source).metadata ?? {});
  } catch {
    return false;
  }
}

/**
 * An Fcmae with a trained decoder from: a `convnext pretrain` run directory (or its
 * checkpoint.safetensors), or an FCMAE checkpoint in FB2's layout (.pth / .safetensors).
 * Encoder-only files (pt_only) are refused: they have no decoder to reconstruct with.
 */
export async function loadFcmae(source: string, opts: LoadFcmaeOptions = {}): Promise<Fcmae> {
  if (!fs.existsSync(source)) throw new FcmaeError(`model ${source}: no such file or directory`);
  if (isOwnRun(source)) return fcmaeFromRun(source, opts);
  if (fs.statSync(source).isDirectory()) throw new FcmaeError(`model ${source}: a directory without checkpoint.safetensors (not a pretraining run)`);
  const f = await loadFcmaeCheckpoint(source, { ...opts, init: 'official' });
  if (!f.hasTrainedDecoder) {
    f.dispose();
    throw new FcmaeError(`model ${source}: an encoder-only FCMAE file (no decoder, proj, pred or mask_token): it cannot reconstruct`);
  }
  return f;
}

export interface ReconstructResult {
  loss: number;
  /** [N, L, 3072] raw decoder output, row-major. */
  pred: Float32Array;
  predShape: [number, number, number];
  mask: PatchMask;
  grid: RgbImage;
}

/**
 * @param x NHWC [N, H, W, 3] normalised, H = W divisible by 32
 */
export function reconstruct(f: Fcmae, x: tf.Tensor4D, opts: { mask?: PatchMask; seed?: number | string } = {}): ReconstructResult {
  const [n, h, w] = x.shape;
  if (h !== w || h % FCMAE_PATCH !== 0) throw new FcmaeError(`input must be square with a side divisible by ${FCMAE_PATCH}, got ${h}x${w}`);
  const mask = opts.mask ?? randomMask(n, (h / FCMAE_PATCH) ** 2, f.maskRatio, opts.seed ?? 0);
  checkMask(mask, n, h, w);
  const out = f.forward(x, mask);
  try {
    return {
      loss: out.loss.dataSync()[0],
      pred: out.pred.dataSync() as Float32Array,
      predShape: out.pred.shape as [number, number, number],
      mask,
      grid: reconstructionGrid(x, out.pred, mask, f.normPixLoss),
    };
  } finally {
    tf.dispose([out.loss, out.pred, out.latent]);
  }
}
