/**
 * The model a training run starts from, and which of its parameters it trains: the seeded official
 * init, or weights from any source the name rule allows (loadModel) with a new head when the class
 * count differs; freezing by head or by stage count.
 *
 * Fine-tuning from an FCMAE encoder (no head) follows FB2 main_finetune.py: the classifier weight is
 * drawn from trunc_normal(std 2e-5) (the cut at +-2 never binds at that std), bias 0; the final
 * LayerNorm keeps its init. The recipe's other parts are trainer options (layerDecay 0.9,
 * weightDecay 0.05; GRN is never decayed).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConvNeXtError } from '../errors';
import { LoadProgress, loadModel } from '../factory/load';
import { ConvNeXtConfig } from '../model/configs';
import { ConvNeXt } from '../model/convnext';

/** A model of `config` (drop path etc. from it), initialised from `init` when given. */
export async function initialModel(config: ConvNeXtConfig, init: string | undefined, seed: number, onProgress?: (p: LoadProgress) => void): Promise<ConvNeXt> {
  if (!init) return new ConvNeXt(config, seed);
  const { model, replacedHead } = await loadModel(init, { numClasses: config.numClasses, dropPathRate: config.dropPathRate, seed, onProgress });
  if (replacedHead === 0) fcmaeFreshHead(model, seed); // an encoder without head: FB2's fine-tuning head init
  const c = model.config;
  if (c.version !== config.version || c.depths.join() !== config.depths.join() || c.dims.join() !== config.dims.join()) {
    model.dispose();
    throw new ConvNeXtError(`init ${init} is V${c.version} depths [${c.depths}] dims [${c.dims}], not ${config.name}`);
  }
  return model;
}

/** Freezing: 'head' trains the head only; k freezes the stem and stages 0..k-1. */
export type Freeze = 'head' | number;

/** Names of the parameters a run trains under `freeze`. */
export function trainableNames(model: ConvNeXt, freeze: Freeze | undefined): string[] {
  const names = model.parameterNames();
  if (freeze === undefined) return names;
  if (freeze === 'head') return names.filter((n) => n.startsWith('head.'));
  if (!(Number.isInteger(freeze) && freeze >= 0 && freeze <= 4)) throw new ConvNeXtError(`freeze must be 'head' or a stage count 0-4, got ${freeze}`);
  return names.filter((n) => !n.startsWith('stem.') && !Array.from({ length: freeze }, (_, i) => `stages.${i}.`).some((p) => n.startsWith(p)));
}

export const FCMAE_HEAD_STD = 2e-5;

/** Re-draws head.fc of a model that was just given a new classifier for an FCMAE encoder (FB2's init). */
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
