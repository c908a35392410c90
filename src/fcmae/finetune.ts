/**
 * Fine-tuning from an FCMAE encoder (FB2 main_finetune.py): the classifier is created fresh and its
 * weight re-drawn from trunc_normal(std 2e-5) (the cut at +-2 never binds at that std), bias 0; the
 * final LayerNorm keeps its init. The recipe's other parts are trainer flags (--layer-decay 0.9,
 * --weight-decay 0.05; GRN is never decayed there).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConvNeXt } from '../model/convnext';

export const FCMAE_HEAD_STD = 2e-5;

/** Re-draws head.fc of a model that was just given a new classifier for an FCMAE encoder. */
export function fcmaeFreshHead(model: ConvNeXt, seed = 0): void {
  const w = model.getWeights();
  const fc = w.get('head.fc.weight');
  const b = w.get('head.fc.bias');
  if (!fc || !b) return;
  tf.tidy(() => {
    fc.assign(tf.randomNormal(fc.shape, 0, FCMAE_HEAD_STD, 'float32', (seed * 2654435761 + 12345) >>> 0));
    b.assign(tf.zerosLike(b));
  });
}
