/**
 * What Node's Predictor (src/inference/predictor.ts) and the page's BrowserPredictor
 * (src/browser/predictor.ts) share; nothing here imports a Node module, as the browser bundle
 * takes it too: the top-k answer and its order, the labels and preprocessing a predictor takes
 * from the model, its stored metadata and the options, and freeing a loaded model when the
 * predictor built around it refuses its options.
 */
import { ConvNeXt } from '../model/convnext';
import { ModelMeta } from '../model/meta';
import { PreprocessingInfo, evalPreprocessing } from '../model/preprocessing';
import { resolveLabels } from './labels';

/** One class of a top-k answer. */
export interface Prediction {
  label: string;
  index: number;
  prob: number;
}

/** The top `k` of probs[offset, offset + n): highest first, ties by lower index. */
export function topk(probs: Float32Array, k: number, labels: string[], offset = 0, n = probs.length - offset): Prediction[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => probs[offset + b] - probs[offset + a] || a - b);
  return idx.slice(0, Math.min(k, n)).map((i) => ({ label: labels[i], index: i, prob: probs[offset + i] }));
}

/**
 * A predictor's class names (none for a model without a head) and eval preprocessing: the options
 * over what the model directory stored over timm's default eval transform at 224.
 */
export function predictorSettings(
  model: ConvNeXt,
  meta: Partial<ModelMeta>,
  opts: { labels?: string[]; preprocessing?: Partial<PreprocessingInfo> },
): { labels: string[]; preprocessing: PreprocessingInfo } {
  return {
    labels: model.numClasses > 0 ? resolveLabels(model.numClasses, meta, opts.labels) : [],
    preprocessing: { ...evalPreprocessing(224), ...(meta.preprocessing ?? {}), ...(opts.preprocessing ?? {}) },
  };
}

/** `make(model, meta)` for a model just loaded; the model is freed when `make` throws (bad options). */
export function adoptLoaded<P>(loaded: { model: ConvNeXt; meta: Partial<ModelMeta> }, make: (model: ConvNeXt, meta: Partial<ModelMeta>) => P): P {
  try {
    return make(loaded.model, loaded.meta);
  } catch (e) {
    loaded.model.dispose();
    throw e;
  }
}
