/**
 * Checkpoint -> model weights: read (torch zip / legacy / safetensors), detect the layout, rename and
 * re-lay every tensor, infer the architecture from shapes (checked against --arch when given), and
 * validate against the model's own parameter list (missing / unexpected / mis-shaped names are errors).
 *
 *   const c = await convertCheckpoint('convnext_tiny_1k_224_ema.pth');
 *   writeModelDir('out/convnext_tiny', c.weights, c.meta);
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { WeightsError } from '../src/errors';
import { ModelMeta } from '../src/model/meta';
import { ConvNeXtConfig } from '../src/model/configs';
import { ConvNeXt, parameterSpecs } from '../src/model/convnext';
import { fitReport, weightsFit } from '../src/layers/params';
import { CheckpointError } from './errors';
import { ConvertedTensor, Layout, LAYOUTS, checkArch, inferConfig, remapStateDict } from './layouts';
import { readCheckpoint } from './read';
import { fcmaeEncoderRemapped, fcmaeKind } from './fcmae_layout';
import { withInitHeadNorm } from './fcmae_layout';

export interface ConvertOptions {
  /** Registered architecture the checkpoint must be (e.g. 'convnext_tiny'); inferred when absent. */
  arch?: string;
  /** Force a layout instead of detecting it. */
  layout?: Layout;
  /** Which wrapper key holds the state dict ('model', 'model_ema', 'state_dict', ...). */
  wrapperKey?: string;
  /** Class names; default: HF config.json id2label beside the checkpoint, when present. */
  labels?: string[];
  /** Accept weights holding NaN or Inf (refused by default: such a model answers NaN). */
  allowNonFinite?: boolean;
}

export interface Converted {
  config: ConvNeXtConfig;
  /** Canonical name -> TF.js-layout float32 tensor, in the model's parameter order. */
  weights: Map<string, ConvertedTensor>;
  meta: Omit<ModelMeta, 'formatVersion' | 'storage'>;
}

interface HfConfig {
  model_type?: string;
  layer_norm_eps?: number;
  id2label?: Record<string, string>;
}

/** HF checkpoints come with config.json: its final-LN eps and labels matter. */
function readHfConfig(file: string): HfConfig | null {
  const p = path.join(path.dirname(file), 'config.json');
  if (!fs.existsSync(p)) return null;
  try {
    return JSON.parse(fs.readFileSync(p, 'utf8')) as HfConfig;
  } catch (e) {
    throw new CheckpointError(p, `cannot parse config.json beside the checkpoint: ${(e as Error).message}`);
  }
}

function labelsFromId2Label(id2label: Record<string, string> | undefined, numClasses: number): string[] | undefined {
  if (!id2label) return undefined;
  const labels = Array.from({ length: numClasses }, (_, i) => id2label[String(i)]);
  return labels.every((l) => typeof l === 'string') ? labels : undefined;
}

/** Class names our timm export keeps in the safetensors metadata (`convnext.labels`, a JSON array). */
function labelsFromMetadata(metadata: Record<string, string>, numClasses: number): string[] | undefined {
  const raw = metadata['convnext.labels'];
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) && v.length === numClasses && v.every((l) => typeof l === 'string') ? (v as string[]) : undefined;
  } catch {
    return undefined;
  }
}

/** Checks converted weights against the model's parameter list (names and shapes); returns them in model order. */
function validateAgainstModel(
  config: ConvNeXtConfig,
  weights: Map<string, ConvertedTensor>,
  file: string,
  layout: Layout,
  sourceKeys: Map<string, string>,
): Map<string, ConvertedTensor> {
  const want = parameterSpecs(config);
  const params = new Map(want.map((p) => [p.name, p.shape]));
  const fit = weightsFit(params, weights, (n) => {
    const source = sourceKeys.get(n) ?? n;
    return want.some((p) => p.name === n) ? `${source} (as ${n})` : source; // mis-shaped : unexpected
  });
  if (fit.missing.length || fit.unexpected.length || fit.mismatched.length) {
    throw new CheckpointError(file, `${layout} checkpoint does not fit ${config.name} (TF.js layouts): ${fitReport(fit, params)}`);
  }
  return new Map(want.map((p) => [p.name, weights.get(p.name)!]));
}

/** Refuses weights with NaN or Inf, naming how many values and which tensors (by their checkpoint keys). */
function checkFinite(weights: Map<string, ConvertedTensor>, sourceKeys: Map<string, string>, file: string): void {
  const bad: string[] = [];
  let count = 0;
  for (const [name, t] of weights) {
    let n = 0;
    for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) n++;
    if (n) {
      count += n;
      bad.push(`${sourceKeys.get(name) ?? name} (${n})`);
    }
  }
  if (count) {
    const shown = bad.slice(0, 8).join(', ') + (bad.length > 8 ? `, ... and ${bad.length - 8} more` : '');
    throw new CheckpointError(
      file,
      `${count} NaN/Inf value(s) in ${bad.length} tensor(s): ${shown}; convert with allowNonFinite (--allow-nonfinite) to accept them`,
    );
  }
}

/** Reads and converts a checkpoint file into TF.js-layout weights plus metadata. */
export async function convertCheckpoint(file: string, opts: ConvertOptions = {}): Promise<Converted> {
  if (opts.layout && !LAYOUTS.includes(opts.layout)) {
    throw new CheckpointError(file, `unknown layout '${opts.layout}': use one of ${LAYOUTS.join(', ')}`);
  }
  const ckpt = await readCheckpoint(file, { wrapperKey: opts.wrapperKey });
  // FCMAE files (FB2 pretraining checkpoints, released pt_only encoders) become numClasses-0 encoders.
  const fcmae = opts.layout ? null : fcmaeKind([...ckpt.tensors.keys()]);
  const remapped = fcmae ? fcmaeEncoderRemapped(ckpt.tensors, file) : remapStateDict(ckpt.tensors, { layout: opts.layout, file });
  const hf = remapped.layout === 'hf' ? readHfConfig(file) : null;
  const config = inferConfig(remapped.weights, { layout: remapped.layout, hfLayerNormEps: hf?.layer_norm_eps, file });
  if (fcmae) remapped.weights = withInitHeadNorm(remapped.weights, config.dims[3]);
  if (opts.arch) {
    checkArch(config, opts.arch, file);
    config.name = opts.arch;
  }
  const weights = validateAgainstModel(config, remapped.weights, file, remapped.layout, remapped.sourceKeys);
  if (!opts.allowNonFinite) checkFinite(weights, remapped.sourceKeys, file);
  const labels = opts.labels ?? labelsFromId2Label(hf?.id2label, config.numClasses) ?? labelsFromMetadata(ckpt.metadata, config.numClasses);
  if (labels && labels.length !== config.numClasses) {
    throw new CheckpointError(file, `${labels.length} labels given for a ${config.numClasses}-class head`);
  }
  return {
    config,
    weights,
    meta: {
      config,
      source: { file: path.basename(file), format: ckpt.format, layout: remapped.layout, wrapper: ckpt.wrapper, ...(fcmae ? { fcmae } : {}) },
      ...(labels ? { labels } : {}),
    },
  };
}

/** Builds a live model from converted weights. */
export function modelFromConverted(c: Converted): ConvNeXt {
  const tensors = new Map<string, tf.Tensor>();
  try {
    for (const [name, w] of c.weights) tensors.set(name, tf.tensor(w.data, w.shape, 'float32'));
    // The variables take over these tensors' data: one copy of the weights on the backend.
    return new ConvNeXt(c.config, 0, tensors);
  } catch (e) {
    throw e instanceof WeightsError ? new CheckpointError(c.meta.source?.file ?? '<checkpoint>', e.message) : e;
  } finally {
    tf.dispose([...tensors.values()]);
  }
}
