/**
 * Layer-wise learning-rate decay for ConvNeXt (FB optim_factory get_num_layer_for_convnext): 12
 * "layers" — stem 0; stage 0 -> 1, stage 1 -> 2, stage 2 -> 3 + block // 3, stage 3 -> 12 (their
 * downsample layers alike: 2, 3, 12); head 13. A parameter at layer i gets lr * decay^(13 - i).
 */
import { ParamGroup } from './adamw';

const NUM_LAYERS = 12;

/** ConvNeXt layer id of a parameter (timm names). */
export function convnextLayerId(name: string): number {
  if (name.startsWith('stem.')) return 0;
  const ds = /^stages\.(\d)\.downsample\./.exec(name);
  if (ds) {
    const s = +ds[1];
    return s === 3 ? NUM_LAYERS : s + 1;
  }
  const b = /^stages\.(\d)\.blocks\.(\d+)\./.exec(name);
  if (b) {
    const s = +b[1];
    const j = +b[2];
    if (s <= 1) return s + 1;
    if (s === 2) return Math.min(3 + Math.floor(j / 3), NUM_LAYERS - 1);
    return NUM_LAYERS;
  }
  return NUM_LAYERS + 1;
}

/** lr scale of a parameter under layer decay `decay` (1 = no decay). */
export function layerDecayScale(name: string, decay: number): number {
  return decay === 1 ? 1 : decay ** (NUM_LAYERS + 1 - convnextLayerId(name));
}

/**
 * Optimizer groups of the official recipe: no weight decay on 1-D parameters (norms, biases, layer
 * scale, GRN), layer-wise lr decay if asked.
 */
export function paramGroups(params: { name: string; shape: number[] }[], layerDecay = 1): Map<string, ParamGroup> {
  return new Map(params.map((p) => [p.name, { lrScale: layerDecayScale(p.name, layerDecay), decay: p.shape.length > 1 }]));
}
