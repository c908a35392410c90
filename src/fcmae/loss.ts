/**
 * FCMAE reconstruction target and loss (FB2 models/fcmae.py patchify / forward_loss), NHWC:
 *
 *   patchify: [N, H, W, 3] -> [N, h*w, p*p*3], patch l = i*w + j, inside a patch the index is
 *             (row*p + col)*3 + channel (channel fastest): the official order
 *   norm-pix: t <- (t - mean(t)) / sqrt(var(t) + 1e-6), per patch, var UNBIASED (torch.var default,
 *             / (p*p*3 - 1)); main_pretrain always sets norm_pix_loss
 *   loss    = sum_{n,l} mask[n,l] * mean_k (pred - t)^2  /  sum mask      (masked patches only)
 */
import * as tf from '@tensorflow/tfjs-core';
import { FcmaeError } from '../errors';
import { FCMAE_PATCH } from './mask';

/**
 * @param imgs [N, H, W, 3] NHWC, H and W divisible by p
 * @returns    [N, (H/p)*(W/p), p*p*3]
 */
export function patchify(imgs: tf.Tensor4D, p = FCMAE_PATCH): tf.Tensor3D {
  const [n, hh, ww, c] = imgs.shape;
  if (hh % p !== 0 || ww % p !== 0) throw new FcmaeError(`patchify: image ${hh}x${ww} is not divisible by the patch size ${p}`);
  const h = hh / p;
  const w = ww / p;
  return tf.tidy(() => tf.reshape(tf.transpose(tf.reshape(imgs, [n, h, p, w, p, c]), [0, 1, 3, 2, 4, 5]), [n, h * w, p * p * c]) as tf.Tensor3D);
}

/** Inverse of patchify: [N, h*w, p*p*3] -> [N, h*p, w*p, 3] (square grid). */
export function unpatchify(x: tf.Tensor3D, p = FCMAE_PATCH, c = 3): tf.Tensor4D {
  const [n, l] = x.shape;
  const h = Math.round(Math.sqrt(l));
  if (h * h !== l) throw new FcmaeError(`unpatchify: ${l} patches are not a square grid`);
  return tf.tidy(() => tf.reshape(tf.transpose(tf.reshape(x, [n, h, h, p, p, c]), [0, 1, 3, 2, 4, 5]), [n, h * p, h * p, c]) as tf.Tensor4D);
}

/** Per-patch mean and unbiased variance over the last axis: [N, L, 1] each. */
export function patchStats(target: tf.Tensor3D): { mean: tf.Tensor3D; variance: tf.Tensor3D } {
  const k = target.shape[2];
  return tf.tidy(() => {
    const mean = tf.mean(target, -1, true) as tf.Tensor3D;
    const variance = tf.div(tf.sum(tf.square(tf.sub(target, mean)), -1, true), k - 1) as tf.Tensor3D;
    return { mean, variance };
  });
}

/** The norm-pix target: each patch standardised by its own mean and unbiased std (eps 1e-6). */
export function normPixTarget(target: tf.Tensor3D, eps = 1e-6): tf.Tensor3D {
  return tf.tidy(() => {
    const { mean, variance } = patchStats(target);
    return tf.div(tf.sub(target, mean), tf.sqrt(tf.add(variance, eps))) as tf.Tensor3D;
  });
}

/**
 * @param imgs [N, H, W, 3] the normalised input
 * @param pred [N, L, p*p*3] decoder output
 * @param mask [N, L] 1 = masked
 * @returns    scalar loss over masked patches
 */
export function fcmaeLoss(imgs: tf.Tensor4D, pred: tf.Tensor3D, mask: tf.Tensor2D, normPix = true): tf.Scalar {
  return tf.tidy(() => {
    let target = patchify(imgs);
    if (!tf.util.arraysEqual(target.shape, pred.shape))
      throw new FcmaeError(`loss: prediction [${pred.shape}] does not match the patchified target [${target.shape}]`);
    if (normPix) target = normPixTarget(target);
    const perPatch = tf.mean(tf.square(tf.sub(pred, target)), -1) as tf.Tensor2D;
    return tf.div(tf.sum(tf.mul(perPatch, mask)), tf.sum(mask)) as tf.Scalar;
  });
}
