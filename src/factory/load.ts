/**
 * loadModel: a model with weights, from any source the name rule (names.ts) allows:
 *   - a pretrained tag (convnext_tiny.fb_in1k), or a bare architecture meaning its default tag:
 *     downloaded, converted and cached on first use (src/zoo);
 *   - a converted model directory, its model.json, an http(s) URL to one, or a training run
 *     directory (its model/);
 *   - a PyTorch checkpoint (.pth/.pt/.bin/.safetensors), converted in memory.
 * With `numClasses` the head is replaced when the class count differs (timm's
 * create_model(name, pretrained=True, num_classes=K)); `dropPathRate` rebuilds for fine-tuning.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ConvNeXtError } from '../errors';
import { convertCheckpoint, ConvertOptions, modelFromConverted } from '../../weights-converter/convert';
import { ResolveOptions, ZooProgress, resolvePretrained } from '../zoo/cache';
import { LoadedModel, isConvertedModel, loadConvertedModel } from '../io/model_dir';
import { ConvNeXt } from '../model/convnext';
import { parseModelName } from './names';

/** Progress of loadModel: the zoo's download/convert events, and which tag a bare architecture meant. */
export type LoadProgress = ZooProgress | { status: 'default-tag'; arch: string; tag: string };

export interface LoadModelOptions extends Omit<ResolveOptions, 'onProgress'>, ConvertOptions {
  /** Classifier outputs wanted: a head of another size is replaced (re-initialised, seeded). */
  numClasses?: number;
  /** Stochastic depth rate of the returned model (fine-tuning); default: as stored (0 for inference). */
  dropPathRate?: number;
  /** Seed of a replaced head's init. Default 0. */
  seed?: number;
  onProgress?: (p: LoadProgress) => void;
}

/** The model directory a local directory stands for: itself, a training run's model/, or a pretraining run's encoder/. */
function modelDirOf(dir: string): string | null {
  for (const d of [dir, path.join(dir, 'model'), path.join(dir, 'encoder')]) if (fs.existsSync(path.join(d, 'model.json'))) return d;
  return null;
}

async function loadWeights(source: string, opts: LoadModelOptions): Promise<LoadedModel> {
  const name = parseModelName(source, true);
  if (name.kind === 'pretrained') {
    if (name.defaulted) opts.onProgress?.({ status: 'default-tag', arch: name.arch, tag: name.tag });
    return loadConvertedModel((await resolvePretrained(name.tag, opts)).dir);
  }
  if (name.kind === 'url' || (name.kind === 'path' && isConvertedModel(name.path))) return loadConvertedModel(source);
  const file = name.kind === 'path' ? name.path : source;
  if (!fs.existsSync(file)) throw new ConvNeXtError(`model ${file}: no such file or directory`);
  if (fs.statSync(file).isDirectory()) {
    const dir = modelDirOf(file);
    if (dir) return loadConvertedModel(dir);
    throw new ConvNeXtError(
      `model ${file}: directory has no model.json, nor model/model.json of a training run, nor encoder/model.json of a pretraining run (convert a checkpoint with \`convnext convert\`)`,
    );
  }
  const c = await convertCheckpoint(file, opts);
  return { model: modelFromConverted(c), meta: { formatVersion: 1, storage: 'float32', ...c.meta } };
}

/** A loaded model; `replacedHead` is the class count of the head numClasses replaced, if it was. */
export interface AdaptedModel extends LoadedModel {
  replacedHead?: number;
}

/** Rebuilds `loaded` with a new head size and/or drop-path rate, keeping every other weight. */
function adapt(loaded: LoadedModel, opts: LoadModelOptions): AdaptedModel {
  const src = loaded.model;
  const newHead = opts.numClasses !== undefined && opts.numClasses !== src.numClasses;
  const newRate = opts.dropPathRate !== undefined && opts.dropPathRate !== src.config.dropPathRate;
  if (!newHead && !newRate) return loaded;
  try {
    const model = new ConvNeXt({ ...src.config, ...(newRate ? { dropPathRate: opts.dropPathRate } : {}) }, opts.seed ?? 0, 'zeros');
    model.loadWeights(src.getWeights());
    if (newHead) model.resetClassifier(opts.numClasses!); // seeded by opts.seed through the model's store
    const { labels, ...meta } = loaded.meta;
    return {
      model,
      meta: { ...meta, config: { ...model.config }, ...(newHead ? {} : labels ? { labels } : {}) },
      ...(newHead ? { replacedHead: src.numClasses } : {}),
    };
  } finally {
    src.dispose();
  }
}

/**
 *   const { model, meta } = await loadModel('convnext_tiny.fb_in1k');              // zoo tag
 *   const { model } = await loadModel('convnext_tiny', { numClasses: 10 });        // default tag, new head
 *   const { model } = await loadModel('models/convnext_tiny');                     // converted dir
 *   const { model } = await loadModel('convnext_tiny_1k_224_ema.pth');             // checkpoint
 */
export async function loadModel(source: string, opts: LoadModelOptions = {}): Promise<AdaptedModel> {
  return adapt(await loadWeights(source, opts), opts);
}
