/**
 * The model a training run starts from, and which of its parameters it trains: the seeded official
 * init, or weights from any source the name rule allows (loadModel) with a new head when the class
 * count differs; freezing by head or by stage count.
 */
import { ConvNeXtError } from '../errors';
import { LoadProgress, loadModel } from '../factory/load';
import { ConvNeXtConfig } from '../model/configs';
import { ConvNeXt } from '../model/convnext';

/** A model of `config` (drop path etc. from it), initialised from `init` when given. */
export async function initialModel(config: ConvNeXtConfig, init: string | undefined, seed: number, onProgress?: (p: LoadProgress) => void): Promise<ConvNeXt> {
  if (!init) return new ConvNeXt(config, seed);
  const { model } = await loadModel(init, { numClasses: config.numClasses, dropPathRate: config.dropPathRate, seed, onProgress });
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
