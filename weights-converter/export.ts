/**
 * Export: a model of ours -> a PyTorch checkpoint in one of the four layouts the converter reads,
 * so that `convert` of the export gives the same weights back, bit for bit.
 *
 *   timm         .safetensors, timm's ConvNeXt keys/shapes (conv_mlp models atto..nano: MLP weights
 *                as 1x1 convs [4C, C, 1, 1]; GRN [4C]), metadata {format: 'pt', 'convnext.labels': JSON}
 *   hf           .safetensors with transformers' ConvNext(V2)ForImageClassification keys, and
 *                config.json beside it (depths, hidden_sizes, layer_norm_eps, id2label/label2id)
 *   official     .pth, torch zip format, {'model': state_dict} (facebookresearch ConvNeXt / -V2 keys)
 *   torchvision  .pth, torch zip format, torchvision.models.ConvNeXt's state dict (V1 only)
 *
 * Key names come from layouts.ts's rename rules run backwards (export_layouts.ts). Every file is
 * written atomically. `fp16` stores float16 (F16 / torch.HalfStorage).
 *
 *   exportModel(model, 'out/convnext_atto.safetensors', { layout: 'timm' });
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { ConvNeXtConfig } from '../src/model/configs';
import { ConvNeXt } from '../src/model/convnext';
import { writeFileAtomic } from '../src/util/fs';
import { CheckpointError } from './errors';
import { exportKeyMap, toTorchLayout } from './export_layouts';
import { ConvertedTensor, Layout, LAYOUTS } from './layouts';
import { writeSafetensors } from './safetensors';
import { writeTorchCheckpoint } from './torch_writer';

export interface ExportOptions {
  layout: Layout;
  /** Store float16 instead of float32. */
  fp16?: boolean;
  /** Class names (HF config.json id2label); default: none (HF gets LABEL_i). */
  labels?: readonly string[];
  /**
   * timm only: write the MLP as 1x1 convs ([out, in, 1, 1]), as timm's conv_mlp=True models do.
   * Default: true for the architectures timm defines with conv_mlp (convnext(v2)_atto/femto/pico/nano).
   */
  convMlp?: boolean;
}

export interface ExportResult {
  layout: Layout;
  /** Files written (the weights first; HF: then config.json). */
  files: string[];
  /** Keys in the exported state dict. */
  keys: number;
  /** Things the target cannot represent exactly (e.g. a final LayerNorm eps its code fixes). */
  warnings: string[];
}

/** timm's conv_mlp architectures (timm models/convnext.py: atto, femto, pico, nano, V1 and V2). */
export function timmUsesConvMlp(config: Pick<ConvNeXtConfig, 'name'>): boolean {
  return /^convnext(v2)?_(atto|femto|pico|nano)$/.test(config.name);
}

/** The extension each layout's file gets. */
export const EXPORT_EXTENSIONS: Readonly<Record<Layout, string>> = { timm: '.safetensors', hf: '.safetensors', official: '.pth', torchvision: '.pth' };

/** What the target layout's own model code cannot express; an error, not a silent change. */
function checkRepresentable(config: ConvNeXtConfig, layout: Layout, file: string): string[] {
  const warnings: string[] = [];
  const refuse = (why: string): never => {
    throw new CheckpointError(file, `cannot export ${config.name} to the ${layout} layout: ${why}`);
  };
  const fixed = layout === 'official' || layout === 'torchvision' || layout === 'hf';
  if (fixed && (config.kernelSize !== 7 || config.mlpRatio !== 4 || config.inChannels !== 3 || (layout !== 'hf' && config.patchSize !== 4))) {
    refuse(
      `its code fixes kernel 7, MLP ratio 4, 3 input channels${layout !== 'hf' ? ' and a 4x4 stem' : ''} ` +
        `(model: kernel ${config.kernelSize}, ratio ${config.mlpRatio}, ${config.inChannels} channels, stem ${config.patchSize})`,
    );
  }
  if (layout === 'official' && config.numClasses === 0)
    warnings.push('the official ConvNeXt always has a head: this headless export loads there only with strict=False');
  if (layout === 'torchvision' && config.version === 2) refuse("torchvision's ConvNeXt is V1 only (no GRN)");
  if (layout === 'torchvision' && config.layerScaleInit === null) refuse("torchvision's CNBlock always has layer_scale; this model has none");
  if (layout === 'torchvision' && config.numClasses === 0) refuse("torchvision's ConvNeXt always has a classifier; this model has none");
  if ((layout === 'hf' || layout === 'official') && config.version === 2 && config.layerScaleInit !== null) refuse('V2 blocks there have no layer scale');
  if (layout !== 'hf' && config.headNormEps !== 1e-6) {
    warnings.push(`the final LayerNorm eps ${config.headNormEps} is not stored by the ${layout} layout; its code uses 1e-6`);
  }
  return warnings;
}

/** HF transformers config.json for ConvNext(V2)ForImageClassification. */
export function hfConfigJson(config: ConvNeXtConfig, labels?: readonly string[]): Record<string, unknown> {
  const names = Array.from({ length: config.numClasses }, (_, i) => labels?.[i] ?? `LABEL_${i}`);
  return {
    architectures: [config.version === 2 ? 'ConvNextV2ForImageClassification' : 'ConvNextForImageClassification'],
    model_type: config.version === 2 ? 'convnextv2' : 'convnext',
    num_channels: config.inChannels,
    patch_size: config.patchSize,
    num_stages: 4,
    depths: [...config.depths],
    hidden_sizes: [...config.dims],
    hidden_act: 'gelu',
    initializer_range: 0.02,
    layer_norm_eps: config.headNormEps,
    ...(config.version === 1 ? { layer_scale_init_value: config.layerScaleInit ?? 0 } : {}),
    drop_path_rate: 0,
    image_size: 224,
    id2label: Object.fromEntries(names.map((n, i) => [String(i), n])),
    label2id: Object.fromEntries(names.map((n, i) => [n, i])),
    torch_dtype: 'float32',
  };
}

/** HF: `file` may be the .safetensors or a directory (model.safetensors + config.json inside). */
function hfPaths(file: string): { weights: string; config: string } {
  const isDir = (fs.existsSync(file) && fs.statSync(file).isDirectory()) || path.extname(file) === '';
  const weights = isDir ? path.join(file, 'model.safetensors') : file;
  return { weights, config: path.join(path.dirname(weights), 'config.json') };
}

/**
 * Exports canonical weights (TF.js layouts, the model's names, e.g. from convertCheckpoint or
 * model.getWeights()) to `file` in `opts.layout`.
 */
export function exportWeights(config: ConvNeXtConfig, weights: ReadonlyMap<string, ConvertedTensor>, file: string, opts: ExportOptions): ExportResult {
  const layout = opts.layout;
  if (!LAYOUTS.includes(layout)) throw new CheckpointError(file, `unknown layout '${String(layout)}': use one of ${LAYOUTS.join(', ')}`);
  const warnings = checkRepresentable(config, layout, file);
  if (opts.labels && opts.labels.length !== config.numClasses) {
    throw new CheckpointError(file, `${opts.labels.length} labels given for a ${config.numClasses}-class head`);
  }
  const names = [...weights.keys()];
  const keys = exportKeyMap(layout, names, config.version, file);
  const convMlp = opts.convMlp ?? timmUsesConvMlp(config);
  const stateDict = new Map<string, ConvertedTensor>();
  for (const n of names) stateDict.set(keys.get(n)!, toTorchLayout(layout, n, weights.get(n)!, { convMlp }));

  // HF's from_pretrained takes a directory: create it when one is named (its parent must exist).
  if (layout === 'hf' && path.extname(file) === '' && !fs.existsSync(file) && fs.existsSync(path.dirname(path.resolve(file)))) fs.mkdirSync(file);
  const dir = path.dirname(path.resolve(layout === 'hf' ? hfPaths(file).weights : file));
  if (!fs.existsSync(dir)) throw new CheckpointError(file, `output directory ${dir} does not exist`);
  if (layout === 'timm' || layout === 'hf') {
    const { weights: wfile, config: cfile } = layout === 'hf' ? hfPaths(file) : { weights: file, config: '' };
    // timm has nowhere for class names; keep them in the metadata so `convert` brings them back (HF: config.json).
    const metadata: Record<string, string> = { format: 'pt', ...(layout === 'timm' && opts.labels ? { 'convnext.labels': JSON.stringify(opts.labels) } : {}) };
    writeSafetensors(wfile, stateDict, metadata, { dtype: opts.fp16 ? 'F16' : 'F32' });
    const files = [wfile];
    if (layout === 'hf') {
      const cfg = { ...hfConfigJson(config, opts.labels), torch_dtype: opts.fp16 ? 'float16' : 'float32' };
      writeFileAtomic(cfile, JSON.stringify(cfg, null, 2) + '\n');
      files.push(cfile);
    }
    return { layout, files, keys: stateDict.size, warnings };
  }
  writeTorchCheckpoint(file, stateDict, { wrapper: layout === 'official' ? 'model' : null, dtype: opts.fp16 ? 'float16' : 'float32' });
  return { layout, files: [file], keys: stateDict.size, warnings };
}

/** Exports a live model (its variables, read once) to `file` in `opts.layout`. */
export function exportModel(model: ConvNeXt, file: string, opts: ExportOptions): ExportResult {
  const weights = new Map<string, ConvertedTensor>();
  for (const [name, v] of model.getWeights()) weights.set(name, { shape: [...v.shape], data: (v as tf.Tensor).dataSync() as Float32Array });
  return exportWeights({ ...model.config } as ConvNeXtConfig, weights, file, opts);
}
