/**
 * Checkpoint layouts -> the model's canonical weights (timm key names, TF.js tensor layouts).
 *
 * One place owns key remapping, as timm's checkpoint_filter_fn: each layout is an ordered list of
 * rename rules (regex -> canonical name), then one transform per canonical name converts the
 * PyTorch tensor layout to TF.js's:
 *
 *   stem / downsample conv   [O, I, k, k]      -> [k, k, I, O]   transpose [2, 3, 1, 0]
 *   depthwise conv           [C, 1, k, k]      -> [k, k, C, 1]   transpose [2, 3, 0, 1]
 *   Linear (fc1, fc2, head)  [out, in]         -> [in, out]      (timm conv_mlp [out, in, 1, 1] too)
 *   layer scale, GRN         [C], [C,1,1], [1,1,1,C] -> [C]
 *   norms, biases            [C]               as is
 *
 * Source key names per layout: ../shared/CONVNEXT_FACTS.md section 6.
 */
import { ConvNeXtConfig, MODEL_CONFIGS, baseConfig, resolveConfig } from '../src/model/configs';
import { transposeArray } from '../src/util/ndarray';
import { CheckpointError } from './errors';
import { RawTensor } from './types';
import { REPORT_SHOWN } from '../src/layers/params';

export type Layout = 'official' | 'timm' | 'torchvision' | 'hf';
export const LAYOUTS: readonly Layout[] = ['official', 'timm', 'torchvision', 'hf'];

/** A float32 tensor in TF.js layout, C-order. */
export interface ConvertedTensor {
  shape: number[];
  data: Float32Array;
}

type Rule = [RegExp, string | ((m: RegExpMatchArray) => string)];

const BLOCK_PARTS_OFFICIAL: Rule[] = [
  [/^stages\.(\d)\.(\d+)\.dwconv\.(weight|bias)$/, 'stages.$1.blocks.$2.conv_dw.$3'],
  [/^stages\.(\d)\.(\d+)\.norm\.(weight|bias)$/, 'stages.$1.blocks.$2.norm.$3'],
  [/^stages\.(\d)\.(\d+)\.pwconv1\.(weight|bias)$/, 'stages.$1.blocks.$2.mlp.fc1.$3'],
  [/^stages\.(\d)\.(\d+)\.pwconv2\.(weight|bias)$/, 'stages.$1.blocks.$2.mlp.fc2.$3'],
  [/^stages\.(\d)\.(\d+)\.gamma$/, 'stages.$1.blocks.$2.gamma'],
  [/^stages\.(\d)\.(\d+)\.grn\.gamma$/, 'stages.$1.blocks.$2.mlp.grn.weight'],
  [/^stages\.(\d)\.(\d+)\.grn\.beta$/, 'stages.$1.blocks.$2.mlp.grn.bias'],
];

/** Ordered rename rules: source key -> canonical key. The first match wins. */
export const RULES: Readonly<Record<Layout, readonly Rule[]>> = {
  official: [
    [/^downsample_layers\.0\.0\.(weight|bias)$/, 'stem.conv.$1'],
    [/^downsample_layers\.0\.1\.(weight|bias)$/, 'stem.norm.$1'],
    [/^downsample_layers\.([1-3])\.0\.(weight|bias)$/, 'stages.$1.downsample.norm.$2'],
    [/^downsample_layers\.([1-3])\.1\.(weight|bias)$/, 'stages.$1.downsample.conv.$2'],
    ...BLOCK_PARTS_OFFICIAL,
    [/^norm\.(weight|bias)$/, 'head.norm.$1'],
    [/^head\.(weight|bias)$/, 'head.fc.$1'],
  ],
  timm: [
    [/^stem\.0\.(weight|bias)$/, 'stem.conv.$1'],
    [/^stem\.1\.(weight|bias)$/, 'stem.norm.$1'],
    [/^stages\.([1-3])\.downsample\.0\.(weight|bias)$/, 'stages.$1.downsample.norm.$2'],
    [/^stages\.([1-3])\.downsample\.1\.(weight|bias)$/, 'stages.$1.downsample.conv.$2'],
    [/^(stages\.\d\.blocks\.\d+\.(?:conv_dw|norm|mlp\.fc1|mlp\.fc2|mlp\.grn)\.(?:weight|bias))$/, '$1'],
    [/^(stages\.\d\.blocks\.\d+\.gamma)$/, '$1'],
    [/^head\.norm\.(weight|bias)$/, 'head.norm.$1'],
    [/^head\.fc\.(weight|bias)$/, 'head.fc.$1'],
  ],
  torchvision: [
    [/^features\.0\.0\.(weight|bias)$/, 'stem.conv.$1'],
    [/^features\.0\.1\.(weight|bias)$/, 'stem.norm.$1'],
    [/^features\.([246])\.0\.(weight|bias)$/, (m) => `stages.${+m[1] / 2}.downsample.norm.${m[2]}`],
    [/^features\.([246])\.1\.(weight|bias)$/, (m) => `stages.${+m[1] / 2}.downsample.conv.${m[2]}`],
    [/^features\.([1357])\.(\d+)\.block\.0\.(weight|bias)$/, (m) => `stages.${(+m[1] - 1) / 2}.blocks.${m[2]}.conv_dw.${m[3]}`],
    [/^features\.([1357])\.(\d+)\.block\.2\.(weight|bias)$/, (m) => `stages.${(+m[1] - 1) / 2}.blocks.${m[2]}.norm.${m[3]}`],
    [/^features\.([1357])\.(\d+)\.block\.3\.(weight|bias)$/, (m) => `stages.${(+m[1] - 1) / 2}.blocks.${m[2]}.mlp.fc1.${m[3]}`],
    [/^features\.([1357])\.(\d+)\.block\.5\.(weight|bias)$/, (m) => `stages.${(+m[1] - 1) / 2}.blocks.${m[2]}.mlp.fc2.${m[3]}`],
    [/^features\.([1357])\.(\d+)\.layer_scale$/, (m) => `stages.${(+m[1] - 1) / 2}.blocks.${m[2]}.gamma`],
    [/^classifier\.0\.(weight|bias)$/, 'head.norm.$1'],
    [/^classifier\.2\.(weight|bias)$/, 'head.fc.$1'],
  ],
  // HF ConvNext*ForImageClassification ('convnext.' / 'convnextv2.' prefix) or the bare base model.
  hf: [
    [/^(?:convnext(?:v2)?\.)?embeddings\.patch_embeddings\.(weight|bias)$/, 'stem.conv.$1'],
    [/^(?:convnext(?:v2)?\.)?embeddings\.layernorm\.(weight|bias)$/, 'stem.norm.$1'],
    [/^(?:convnext(?:v2)?\.)?encoder\.stages\.([1-3])\.downsampling_layer\.0\.(weight|bias)$/, 'stages.$1.downsample.norm.$2'],
    [/^(?:convnext(?:v2)?\.)?encoder\.stages\.([1-3])\.downsampling_layer\.1\.(weight|bias)$/, 'stages.$1.downsample.conv.$2'],
    [/^(?:convnext(?:v2)?\.)?encoder\.stages\.(\d)\.layers\.(\d+)\.dwconv\.(weight|bias)$/, 'stages.$1.blocks.$2.conv_dw.$3'],
    [/^(?:convnext(?:v2)?\.)?encoder\.stages\.(\d)\.layers\.(\d+)\.layernorm\.(weight|bias)$/, 'stages.$1.blocks.$2.norm.$3'],
    [/^(?:convnext(?:v2)?\.)?encoder\.stages\.(\d)\.layers\.(\d+)\.pwconv1\.(weight|bias)$/, 'stages.$1.blocks.$2.mlp.fc1.$3'],
    [/^(?:convnext(?:v2)?\.)?encoder\.stages\.(\d)\.layers\.(\d+)\.pwconv2\.(weight|bias)$/, 'stages.$1.blocks.$2.mlp.fc2.$3'],
    [/^(?:convnext(?:v2)?\.)?encoder\.stages\.(\d)\.layers\.(\d+)\.layer_scale_parameter$/, 'stages.$1.blocks.$2.gamma'],
    [/^(?:convnext(?:v2)?\.)?encoder\.stages\.(\d)\.layers\.(\d+)\.grn\.(weight|bias)$/, 'stages.$1.blocks.$2.mlp.grn.$3'],
    [/^(?:convnext(?:v2)?\.)?layernorm\.(weight|bias)$/, 'head.norm.$1'],
    [/^classifier\.(weight|bias)$/, 'head.fc.$1'],
  ],
};

/** A key that only one layout has, to tell them apart. */
const SIGNATURES: [Layout, RegExp][] = [
  ['official', /^downsample_layers\.0\.0\.weight$/],
  ['timm', /^stem\.0\.weight$/],
  ['torchvision', /^features\.0\.0\.weight$/],
  ['hf', /^(?:convnext(?:v2)?\.)?embeddings\.patch_embeddings\.weight$/],
];

/** Says what a checkpoint is when it is not a supported classifier/backbone layout. */
function describeUnsupported(keys: string[]): string | null {
  if (keys.some((k) => k === 'mask_token' || k.startsWith('decoder.') || k.startsWith('pred.')) && keys.some((k) => k.startsWith('encoder.'))) {
    return (
      'this is a ConvNeXt-V2 FCMAE pretraining checkpoint (pt_only: sparse Minkowski encoder, decoder, mask token, ' +
      'no final norm or head): remapStateDict does not take it; convertCheckpoint does (src/fcmae/checkpoint.ts, the FB2 ' +
      'remap_checkpoint_keys step), giving a numClasses-0 encoder'
    );
  }
  if (keys.some((k) => k.includes('hidden_states_norms'))) return 'this is a Hugging Face ConvNextBackbone checkpoint (per-stage output norms), not supported';
  return null;
}

/** Detects the layout from key names. */
export function detectLayout(keys: string[], file = '<checkpoint>'): Layout {
  const found = SIGNATURES.filter(([, re]) => keys.some((k) => re.test(k))).map(([l]) => l);
  if (found.length === 1) return found[0];
  const unsupported = describeUnsupported(keys);
  if (unsupported) throw new CheckpointError(file, unsupported);
  const sample = keys.slice(0, 6).join(', ');
  if (found.length > 1) throw new CheckpointError(file, `ambiguous layout: keys of ${found.join(' and ')} both present (first keys: ${sample})`);
  throw new CheckpointError(
    file,
    `not a ConvNeXt state dict of a known layout (official, timm, torchvision, hf): no stem key found; first keys: ${sample || '(none)'}`,
  );
}

function shapeStr(s: number[]): string {
  return `[${s.join(', ')}]`;
}

/** PyTorch layout -> TF.js layout for one canonical name. Throws on a shape that cannot be that tensor. */
export function toTfjsLayout(name: string, t: { shape: number[]; data: Float32Array }, file = '<checkpoint>'): ConvertedTensor {
  const s = t.shape;
  const bad = (want: string): never => {
    throw new CheckpointError(file, `tensor ${name} has shape ${shapeStr(s)}, expected ${want}`);
  };
  if (/(^stem\.conv|downsample\.conv)\.weight$/.test(name)) {
    if (s.length !== 4) bad('[out, in, k, k]');
    return transposeArray(t.data, s, [2, 3, 1, 0]);
  }
  if (/conv_dw\.weight$/.test(name)) {
    if (s.length !== 4 || s[1] !== 1) bad('[C, 1, k, k]');
    return transposeArray(t.data, s, [2, 3, 0, 1]);
  }
  if (/(mlp\.fc[12]|head\.fc)\.weight$/.test(name)) {
    const is1x1 = s.length === 4 && s[2] === 1 && s[3] === 1;
    if (s.length !== 2 && !is1x1) bad('[out, in] (or a 1x1 conv [out, in, 1, 1])');
    return transposeArray(t.data, [s[0], s[1]], [1, 0]);
  }
  if (/(gamma|grn\.weight|grn\.bias)$/.test(name)) {
    const c = s.length ? Math.max(...s) : 0;
    if (s.length === 0 || s.reduce((a, b) => a * b, 1) !== c) bad('[C] (or [C, 1, 1] / [1, 1, 1, C])');
    return { shape: [c], data: t.data };
  }
  if (s.length !== 1) bad('a 1-D [C] tensor');
  return { shape: [...s], data: t.data };
}

/** Result of remapping a state dict. */
export interface Remapped {
  layout: Layout;
  /** Canonical name -> TF.js-layout tensor. */
  weights: Map<string, ConvertedTensor>;
  /** Canonical name -> source key (for messages). */
  sourceKeys: Map<string, string>;
}

/**
 * Renames and re-lays every tensor. Keys no rule matches are an error listing them (as
 * load_state_dict(strict=True) would): nothing is silently skipped.
 */
export function remapStateDict(tensors: Map<string, RawTensor>, opts: { layout?: Layout; file?: string } = {}): Remapped {
  const file = opts.file ?? '<checkpoint>';
  const keys = [...tensors.keys()];
  const layout = opts.layout ?? detectLayout(keys, file);
  const rules = RULES[layout];
  const weights = new Map<string, ConvertedTensor>();
  const sourceKeys = new Map<string, string>();
  const unexpected: string[] = [];
  for (const [key, t] of tensors) {
    const rule = rules.find(([re]) => re.test(key));
    if (!rule) {
      unexpected.push(`${key} ${shapeStr(t.shape)}`);
      continue;
    }
    const [re, to] = rule;
    const name = typeof to === 'string' ? key.replace(re, to) : to(key.match(re)!);
    if (!(t.data instanceof Float32Array)) {
      throw new CheckpointError(file, `tensor ${key} is ${t.dtype}, expected a floating-point tensor`);
    }
    if (sourceKeys.has(name)) throw new CheckpointError(file, `keys ${sourceKeys.get(name)} and ${key} both map to ${name}`);
    weights.set(name, toTfjsLayout(name, { shape: t.shape, data: t.data }, file));
    sourceKeys.set(name, key);
  }
  if (unexpected.length) {
    // A wrong --layout mismatches every key: name the layout the keys look like and a few of them.
    let detected = '';
    if (opts.layout) {
      try {
        const d = detectLayout(keys, file);
        if (d !== layout) detected = ` (the keys look like the ${d} layout: drop --layout, or give --layout ${d})`;
      } catch {
        // no layout recognised: the listing below says enough
      }
    }
    const shown = unexpected.slice(0, REPORT_SHOWN).join(', ') + (unexpected.length > REPORT_SHOWN ? `, ... and ${unexpected.length - REPORT_SHOWN} more` : '');
    throw new CheckpointError(file, `${unexpected.length} unexpected key(s) for the ${layout} layout${detected}: ${shown}`);
  }
  return { layout, weights, sourceKeys };
}

/** Options steering config inference. */
export interface InferOptions {
  layout: Layout;
  /** HF config.json's layer_norm_eps (the final LN's eps), when known. */
  hfLayerNormEps?: number;
  file?: string;
}

/**
 * Infers the architecture from tensor shapes: version (GRN present), depths (block indices),
 * dims, kernel and patch size, MLP ratio, classes (head rows; 0 if headless), layer scale.
 */
export function inferConfig(weights: Map<string, ConvertedTensor>, opts: InferOptions): ConvNeXtConfig {
  const file = opts.file ?? '<checkpoint>';
  const get = (n: string): ConvertedTensor => {
    const t = weights.get(n);
    if (!t) throw new CheckpointError(file, `missing ${n}: cannot infer the architecture`);
    return t;
  };
  const stemW = get('stem.conv.weight'); // [p, p, in, d0]
  const depths = [0, 0, 0, 0];
  let useGrn = false;
  let hasGamma = false;
  for (const n of weights.keys()) {
    const m = /^stages\.(\d)\.blocks\.(\d+)\./.exec(n);
    if (m) {
      const i = +m[1];
      if (i > 3) throw new CheckpointError(file, `key ${n}: ConvNeXt has 4 stages (0-3)`);
      depths[i] = Math.max(depths[i], +m[2] + 1);
    }
    if (n.includes('.mlp.grn.')) useGrn = true;
    if (n.endsWith('.gamma')) hasGamma = true;
  }
  const missingStage = depths.findIndex((d) => d === 0);
  if (missingStage >= 0) throw new CheckpointError(file, `no blocks found for stage ${missingStage}`);
  const dims = depths.map((_, i) => get(`stages.${i}.blocks.0.conv_dw.weight`).shape[2]);
  const dw = get('stages.0.blocks.0.conv_dw.weight');
  const fc1 = get('stages.0.blocks.0.mlp.fc1.weight');
  const headBias = weights.get('head.fc.bias');
  const version = useGrn ? 2 : 1;
  const base = baseConfig(version, '', { depths: depths as ConvNeXtConfig['depths'], dims: dims as ConvNeXtConfig['dims'] });
  const registered = Object.values(MODEL_CONFIGS).find((c) => c.version === version && c.depths.join() === depths.join() && c.dims.join() === dims.join());
  return resolveConfig({
    ...base,
    name: registered?.name ?? `convnext${version === 2 ? 'v2' : ''}_custom`,
    inChannels: stemW.shape[2],
    patchSize: stemW.shape[0],
    kernelSize: dw.shape[0],
    mlpRatio: fc1.shape[1] / dims[0],
    numClasses: headBias ? headBias.shape[0] : 0,
    layerScaleInit: hasGamma ? 1e-6 : null,
    headNormEps: opts.layout === 'hf' ? (opts.hfLayerNormEps ?? 1e-12) : 1e-6,
  });
}

/** Checks an inferred config against a requested architecture (--arch); class count may differ. */
export function checkArch(inferred: ConvNeXtConfig, arch: string, file = '<checkpoint>'): void {
  const want = resolveConfig(arch);
  const desc = (c: ConvNeXtConfig) => `V${c.version} depths [${c.depths.join(', ')}] dims [${c.dims.join(', ')}]`;
  if (want.version !== inferred.version || want.depths.join() !== inferred.depths.join() || want.dims.join() !== inferred.dims.join()) {
    throw new CheckpointError(file, `checkpoint is ${desc(inferred)}, but --arch ${arch} is ${desc(want)}`);
  }
}
