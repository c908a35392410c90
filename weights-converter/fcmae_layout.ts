/**
 * FCMAE checkpoint layouts <-> our canonical names (../shared/FCMAE.md sec. 6):
 *
 * (a) what FB2 main_pretrain saves: {'model', 'epoch', 'args', 'optimizer', 'scaler'}; model keys
 *     'encoder.' + MinkowskiEngine names: downsample convs '.1.kernel' [K*K, in, out], dwconv
 *     '.dwconv.kernel' [K*K, C], '.ln.' inside norms, '.linear.' inside pwconvs, biases of sparse
 *     convs [1, C], GRN [1, C]; plus the dense decoder: proj, mask_token [1, D, 1, 1],
 *     decoder.i.* (grn [1, 1, 1, 4D]), pred.
 *     FB2 utils.remap_checkpoint_keys turns a kernel into weight[o, i, kh, kw] = kernel[kw*K + kh, i, o]
 *     (ME enumerates kernel offsets with H fastest: the axes are swapped, not just reshaped).
 * (b) the released pt_only files (convnextv2_*_1k_224_fcmae.pt): {'model'} with dense fine-tune names,
 *     no 'encoder.' prefix, no decoder, no final norm, no head.
 *
 * Both become our encoder names (via weights-converter's 'official' rules) plus decoder names
 * (proj.*, mask_token, decoder.i.<block names>, pred.*) in TF.js layouts. The inverse writes (a).
 */
import { ConvertedTensor, Remapped, remapStateDict } from './layouts';
import { CheckpointError } from './errors';
import { RawTensor } from './types';
import { transposeArray } from '../src/util/ndarray';

type Tensor = { shape: number[]; data: Float32Array };

/** Keys of the FCMAE decoder in official checkpoints (FB2 main_finetune drops them by these substrings). */
export const DECODER_KEY = /^(proj\.|mask_token$|decoder\.|pred\.)/;

/** True for an FCMAE state dict: Minkowski names, an 'encoder.' prefix with a decoder, or a pt_only encoder. */
export function fcmaeKind(keys: string[]): 'pretrain' | 'encoder-only' | null {
  const hasDecoder = keys.some((k) => DECODER_KEY.test(k));
  const minkowski = keys.some((k) => /\.kernel$|\.ln\.|\.linear\./.test(k));
  if (keys.some((k) => k.startsWith('encoder.')) && (hasDecoder || minkowski)) return 'pretrain';
  // pt_only: dense official encoder names, no final norm ('norm.*') and no head.
  if (keys.includes('downsample_layers.0.0.weight') && keys.some((k) => /\.grn\./.test(k)) && !keys.some((k) => /^(norm|head)\./.test(k)))
    return 'encoder-only';
  return null;
}

function f32(t: RawTensor, key: string, file: string): Tensor {
  if (!(t.data instanceof Float32Array)) throw new CheckpointError(file, `tensor ${key} is ${t.dtype}, expected a floating-point tensor`);
  return { shape: t.shape, data: t.data };
}

function ksize(kk: number, key: string, file: string): number {
  const k = Math.round(Math.sqrt(kk));
  if (k * k !== kk) throw new CheckpointError(file, `${key}: kernel has ${kk} offsets, not a square K*K`);
  return k;
}

/**
 * FB2 remap_checkpoint_keys on the encoder: drops 'encoder.', converts kernels (axes swapped),
 * removes '.ln.' / '.linear.', flattens [1, C] biases; GRN is left [1, C] (flattened later).
 * Dense keys pass unchanged.
 */
export function remapMinkowski(tensors: Map<string, RawTensor>, file = '<checkpoint>'): Map<string, RawTensor> {
  const out = new Map<string, RawTensor>();
  for (const [key0, t0] of tensors) {
    let key = key0.startsWith('encoder.') ? key0.slice('encoder.'.length) : key0;
    let t: RawTensor = t0;
    if (key.endsWith('.kernel')) {
      key = key.slice(0, -'kernel'.length) + 'weight';
      const v = f32(t0, key0, file);
      if (v.shape.length === 3) {
        const [kk, i, o] = v.shape;
        const k = ksize(kk, key0, file);
        // kernel [kw, kh, i, o] (kw slowest) -> weight [o, i, kh, kw]
        const w = transposeArray(v.data, [k, k, i, o], [3, 2, 1, 0]);
        t = { shape: [o, i, k, k], dtype: 'float32', data: w.data };
      } else if (v.shape.length === 2) {
        const [kk, c] = v.shape;
        const k = ksize(kk, key0, file);
        const w = transposeArray(v.data, [k, k, c], [2, 1, 0]); // [kw, kh, c] -> [c, kh, kw]
        t = { shape: [c, 1, k, k], dtype: 'float32', data: w.data };
      } else throw new CheckpointError(file, `${key0}: kernel must be [K*K, in, out] or [K*K, C], got [${v.shape}]`);
    } else if (/\.(ln|linear)\./.test(key)) {
      const parts = key.split('.');
      parts.splice(parts.length - 2, 1);
      key = parts.join('.');
    }
    if (key.endsWith('.bias') && t.shape.length !== 1 && !DECODER_KEY.test(key)) t = { ...t, shape: [t.shape.reduce((a, b) => a * b, 1)] };
    if (out.has(key)) throw new CheckpointError(file, `keys ${key0} and another both map to ${key}`);
    out.set(key, t);
  }
  return out;
}

type DecRule = [RegExp, string, 'linear1x1' | 'dw' | 'flat' | 'asis'];
const DECODER_RULES: DecRule[] = [
  [/^proj\.weight$/, 'proj.weight', 'linear1x1'],
  [/^proj\.bias$/, 'proj.bias', 'asis'],
  [/^mask_token$/, 'mask_token', 'flat'],
  [/^decoder\.(\d+)\.dwconv\.weight$/, 'decoder.$1.conv_dw.weight', 'dw'],
  [/^decoder\.(\d+)\.dwconv\.bias$/, 'decoder.$1.conv_dw.bias', 'asis'],
  [/^decoder\.(\d+)\.norm\.(weight|bias)$/, 'decoder.$1.norm.$2', 'asis'],
  [/^decoder\.(\d+)\.pwconv1\.weight$/, 'decoder.$1.mlp.fc1.weight', 'linear1x1'],
  [/^decoder\.(\d+)\.pwconv1\.bias$/, 'decoder.$1.mlp.fc1.bias', 'asis'],
  [/^decoder\.(\d+)\.grn\.gamma$/, 'decoder.$1.mlp.grn.weight', 'flat'],
  [/^decoder\.(\d+)\.grn\.beta$/, 'decoder.$1.mlp.grn.bias', 'flat'],
  [/^decoder\.(\d+)\.pwconv2\.weight$/, 'decoder.$1.mlp.fc2.weight', 'linear1x1'],
  [/^decoder\.(\d+)\.pwconv2\.bias$/, 'decoder.$1.mlp.fc2.bias', 'asis'],
  [/^pred\.weight$/, 'pred.weight', 'linear1x1'],
  [/^pred\.bias$/, 'pred.bias', 'asis'],
];

function decoderToCanonical(tensors: Map<string, RawTensor>, file: string): Map<string, ConvertedTensor> {
  const out = new Map<string, ConvertedTensor>();
  for (const [key, t0] of tensors) {
    const rule = DECODER_RULES.find(([re]) => re.test(key));
    if (!rule) throw new CheckpointError(file, `unexpected decoder key ${key} [${t0.shape}]`);
    const t = f32(t0, key, file);
    const name = key.replace(rule[0], rule[1]);
    const s = t.shape;
    const n = s.reduce((a, b) => a * b, 1);
    let v: ConvertedTensor;
    if (rule[2] === 'linear1x1') {
      if (!(s.length === 2 || (s.length === 4 && s[2] === 1 && s[3] === 1)))
        throw new CheckpointError(file, `${key} is [${s}], expected [out, in] or [out, in, 1, 1]`);
      v = transposeArray(t.data, [s[0], s[1]], [1, 0]);
    } else if (rule[2] === 'dw') {
      if (s.length !== 4 || s[1] !== 1) throw new CheckpointError(file, `${key} is [${s}], expected [C, 1, k, k]`);
      v = transposeArray(t.data, s, [2, 3, 0, 1]);
    } else if (rule[2] === 'flat') {
      if (Math.max(...s) !== n) throw new CheckpointError(file, `${key} is [${s}], expected one non-unit axis`);
      v = { shape: [n], data: t.data };
    } else {
      if (s.length !== 1) throw new CheckpointError(file, `${key} is [${s}], expected a 1-D tensor`);
      v = { shape: [...s], data: t.data };
    }
    out.set(name, v);
  }
  return out;
}

/** An FCMAE state dict in our names and TF.js layouts. */
export interface FcmaeWeights {
  kind: 'pretrain' | 'encoder-only';
  /** Encoder weights (timm names), without head.* (FCMAE has no final norm or head). */
  encoder: Map<string, ConvertedTensor>;
  /** Decoder weights, empty for pt_only files. */
  decoder: Map<string, ConvertedTensor>;
  decoderDim: number | null;
  decoderDepth: number | null;
}

/** Converts an FCMAE state dict (either layout) into our names; unknown keys are errors. */
export function fcmaeFromStateDict(tensors: Map<string, RawTensor>, file = '<checkpoint>'): FcmaeWeights {
  const kind = fcmaeKind([...tensors.keys()]);
  if (!kind) throw new CheckpointError(file, 'not an FCMAE checkpoint (no encoder./Minkowski keys, no pt_only encoder)');
  const dense = remapMinkowski(tensors, file);
  const enc = new Map<string, RawTensor>();
  const dec = new Map<string, RawTensor>();
  for (const [k, v] of dense) (DECODER_KEY.test(k) ? dec : enc).set(k, v);
  const encoder = remapStateDict(enc, { layout: 'official', file }).weights;
  const decoder = decoderToCanonical(dec, file);
  const proj = decoder.get('proj.weight');
  let depth = 0;
  for (const k of decoder.keys()) {
    const m = /^decoder\.(\d+)\./.exec(k);
    if (m) depth = Math.max(depth, +m[1] + 1);
  }
  return { kind, encoder, decoder, decoderDim: proj ? proj.shape[1] : null, decoderDepth: proj ? depth : null };
}

type OutRule = [RegExp, string, (t: Tensor) => Tensor];
const lin = (t: Tensor): Tensor => transposeArray(t.data, t.shape, [1, 0]);
const lin1x1 = (t: Tensor): Tensor => {
  const w = lin(t);
  return { shape: [...w.shape, 1, 1], data: w.data };
};
const row = (t: Tensor): Tensor => ({ shape: [1, t.data.length], data: t.data });
const asis = (t: Tensor): Tensor => t;
/** [k, k, in, out] -> kernel [K*K, in, out] with kernel[kw*K + kh] = W[kh, kw] (ME order). */
const convKernel = (t: Tensor): Tensor => {
  const [k, , i, o] = t.shape;
  const w = transposeArray(t.data, t.shape, [1, 0, 2, 3]);
  return { shape: [k * k, i, o], data: w.data };
};
/** [k, k, C, 1] -> kernel [K*K, C]. */
const dwKernel = (t: Tensor): Tensor => {
  const [k, , c] = t.shape;
  const w = transposeArray(t.data, [k, k, c], [1, 0, 2]);
  return { shape: [k * k, c], data: w.data };
};
const OUT_RULES: OutRule[] = [
  [/^stem\.conv\.weight$/, 'encoder.downsample_layers.0.0.weight', (t) => transposeArray(t.data, t.shape, [3, 2, 0, 1])],
  [/^stem\.conv\.bias$/, 'encoder.downsample_layers.0.0.bias', asis],
  [/^stem\.norm\.(weight|bias)$/, 'encoder.downsample_layers.0.1.$1', asis],
  [/^stages\.(\d)\.downsample\.norm\.(weight|bias)$/, 'encoder.downsample_layers.$1.0.ln.$2', asis],
  [/^stages\.(\d)\.downsample\.conv\.weight$/, 'encoder.downsample_layers.$1.1.kernel', convKernel],
  [/^stages\.(\d)\.downsample\.conv\.bias$/, 'encoder.downsample_layers.$1.1.bias', row],
  [/^stages\.(\d)\.blocks\.(\d+)\.conv_dw\.weight$/, 'encoder.stages.$1.$2.dwconv.kernel', dwKernel],
  [/^stages\.(\d)\.blocks\.(\d+)\.conv_dw\.bias$/, 'encoder.stages.$1.$2.dwconv.bias', row],
  [/^stages\.(\d)\.blocks\.(\d+)\.norm\.(weight|bias)$/, 'encoder.stages.$1.$2.norm.ln.$3', asis],
  [/^stages\.(\d)\.blocks\.(\d+)\.mlp\.fc1\.weight$/, 'encoder.stages.$1.$2.pwconv1.linear.weight', lin],
  [/^stages\.(\d)\.blocks\.(\d+)\.mlp\.fc1\.bias$/, 'encoder.stages.$1.$2.pwconv1.linear.bias', asis],
  [/^stages\.(\d)\.blocks\.(\d+)\.mlp\.grn\.weight$/, 'encoder.stages.$1.$2.grn.gamma', row],
  [/^stages\.(\d)\.blocks\.(\d+)\.mlp\.grn\.bias$/, 'encoder.stages.$1.$2.grn.beta', row],
  [/^stages\.(\d)\.blocks\.(\d+)\.mlp\.fc2\.weight$/, 'encoder.stages.$1.$2.pwconv2.linear.weight', lin],
  [/^stages\.(\d)\.blocks\.(\d+)\.mlp\.fc2\.bias$/, 'encoder.stages.$1.$2.pwconv2.linear.bias', asis],
  [/^proj\.weight$/, 'proj.weight', lin1x1],
  [/^proj\.bias$/, 'proj.bias', asis],
  [/^mask_token$/, 'mask_token', (t) => ({ shape: [1, t.data.length, 1, 1], data: t.data })],
  [/^decoder\.(\d+)\.conv_dw\.weight$/, 'decoder.$1.dwconv.weight', (t) => transposeArray(t.data, t.shape, [2, 3, 0, 1])],
  [/^decoder\.(\d+)\.conv_dw\.bias$/, 'decoder.$1.dwconv.bias', asis],
  [/^decoder\.(\d+)\.norm\.(weight|bias)$/, 'decoder.$1.norm.$2', asis],
  [/^decoder\.(\d+)\.mlp\.fc1\.(weight|bias)$/, 'decoder.$1.pwconv1.$2', (t) => (t.shape.length === 2 ? lin(t) : t)],
  [/^decoder\.(\d+)\.mlp\.grn\.weight$/, 'decoder.$1.grn.gamma', (t) => ({ shape: [1, 1, 1, t.data.length], data: t.data })],
  [/^decoder\.(\d+)\.mlp\.grn\.bias$/, 'decoder.$1.grn.beta', (t) => ({ shape: [1, 1, 1, t.data.length], data: t.data })],
  [/^decoder\.(\d+)\.mlp\.fc2\.(weight|bias)$/, 'decoder.$1.pwconv2.$2', (t) => (t.shape.length === 2 ? lin(t) : t)],
  [/^pred\.weight$/, 'pred.weight', lin1x1],
  [/^pred\.bias$/, 'pred.bias', asis],
];

/**
 * Our FCMAE weights (encoder without head.*, decoder) -> the state dict FB2 main_pretrain saves
 * (MinkowskiEngine names and shapes, PyTorch layouts), in our parameter order.
 */
export function fcmaeToOfficial(weights: Map<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, t] of weights) {
    if (name.startsWith('head.')) continue;
    const rule = OUT_RULES.find(([re]) => re.test(name));
    if (!rule) throw new CheckpointError('<fcmae>', `no official FCMAE name for ${name}`);
    out.set(name.replace(rule[0], rule[1]), rule[2](t));
  }
  return out;
}

/**
 * The encoder of an FCMAE state dict as the converter's Remapped ('official' names; the decoder is
 * dropped, as FB2 main_finetune drops every key containing decoder / mask_token / proj / pred).
 */
export function fcmaeEncoderRemapped(tensors: Map<string, RawTensor>, file = '<checkpoint>'): Remapped {
  const w = fcmaeFromStateDict(tensors, file);
  return { layout: 'official', weights: w.encoder, sourceKeys: new Map([...w.encoder.keys()].map((k) => [k, k])) };
}

/** Encoder weights plus the final norm at its init (pool -> LayerNorm, as timm's convnextv2_*.fcmae). */
export function withInitHeadNorm(encoder: Map<string, ConvertedTensor>, dim: number): Map<string, ConvertedTensor> {
  const out = new Map(encoder);
  if (!out.has('head.norm.weight')) out.set('head.norm.weight', { shape: [dim], data: new Float32Array(dim).fill(1) });
  if (!out.has('head.norm.bias')) out.set('head.norm.bias', { shape: [dim], data: new Float32Array(dim) });
  return out;
}
