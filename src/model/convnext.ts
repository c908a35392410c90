/**
 * ConvNeXt V1/V2 (Liu et al. 2022; Woo et al. 2023) on tfjs-core ops: stem -> 4 stages -> head.
 *
 * Layout: inputs are NHWC float32 [N, H, W, 3], already normalised (ImageNet mean/std); every
 * feature map is NHWC; logits are [N, numClasses]. PyTorch's NCHW arrays must be transposed
 * [0, 2, 3, 1] first. H and W must be at least 32 (the total stride); other sizes follow PyTorch's
 * floor semantics.
 *
 * Parameters are tf.Variables named as timm's state-dict keys (stem.conv, stages.i.blocks.j...,
 * head.norm, head.fc) in TF.js layouts; see params.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConvNeXtStage, StageOptions } from '../blocks/stage';
import { ForwardContext } from '../blocks/convnext_block';
import { ConfigError, ShapeError } from '../errors';
import { dropPathSchedule } from '../layers/drop_path';
import { layerNorm } from '../layers/layer_norm';
import { linear } from '../layers/linear';
import { stem } from '../layers/stem';
import { ConvNeXtConfig, FeatureInfo, countParams, featureInfo } from './configs';
import {
  BoundParams,
  ParamInfo,
  ParamSpec,
  ParamStore,
  ParamTable,
  bindParams,
  checkWeightsFit,
  ones,
  tableSpecs,
  truncNormal002,
  zeros,
} from '../layers/params';

/**
 * NOTE: the wasm backend is a 32-bit address space (4 GiB) and XNNPACK keeps packed copies of the
 * matMul weights, so weights over ~2 GiB (ConvNeXt-V2-huge: 2.6 GB) abort inside wasm. Say so first.
 */
const WASM_MAX_WEIGHT_BYTES = 2 * 1024 ** 3;

function checkFitsBackend(config: ConvNeXtConfig): void {
  const bytes = countParams(config) * 4;
  if (tf.getBackend() === 'wasm' && bytes > WASM_MAX_WEIGHT_BYTES) {
    throw new ConfigError(
      `${config.name} has ${(bytes / 1024 ** 3).toFixed(2)} GiB of float32 weights, more than the wasm backend's ` +
        `4 GiB address space can hold with XNNPACK's packed copies; use the cpu backend or tfjs-node`,
    );
  }
}

function stageOptions(c: ConvNeXtConfig): StageOptions[] {
  const rates = dropPathSchedule(c.depths, c.dropPathRate);
  return c.dims.map((dim, i) => ({
    index: i,
    firstBlockIndex: c.depths.slice(0, i).reduce((a, b) => a + b, 0),
    inDim: i === 0 ? dim : c.dims[i - 1],
    dim,
    depth: c.depths[i],
    dropPathRates: rates[i],
    block: { kernelSize: c.kernelSize, mlpRatio: c.mlpRatio, layerScaleInit: c.layerScaleInit, useGrn: c.useGrn, lnEps: c.lnEps },
  }));
}

/** Stem (prefix 'stem'), declared once: conv p x p / s p (3 -> d0), then LN. */
function stemParams(c: ConvNeXtConfig) {
  const d0 = c.dims[0];
  return {
    convWeight: ['conv.weight', [c.patchSize, c.patchSize, c.inChannels, d0], truncNormal002],
    convBias: ['conv.bias', [d0], zeros],
    normWeight: ['norm.weight', [d0], ones],
    normBias: ['norm.bias', [d0], zeros],
  } satisfies ParamTable;
}

/** Head norm (prefix 'head'): LN over the pooled d3 features. */
function headNormParams(c: ConvNeXtConfig) {
  return { normWeight: ['norm.weight', [c.dims[3]], ones], normBias: ['norm.bias', [c.dims[3]], zeros] } satisfies ParamTable;
}

/** Classifier (prefix 'head'): Linear d3 -> numClasses, replaceable by resetClassifier. */
function classifierParams(dim: number, numClasses: number) {
  return { fcWeight: ['fc.weight', [dim, numClasses], truncNormal002], fcBias: ['fc.bias', [numClasses], zeros] } satisfies ParamTable;
}

function headSpecs(dim: number, numClasses: number): ParamSpec[] {
  return numClasses > 0 ? tableSpecs('head', classifierParams(dim, numClasses)) : [];
}

/**
 * Every parameter of a model with this config, in order (stem, stages, head), without allocating
 * anything: names (timm keys), TF.js shapes, init, weight decay.
 */
export function parameterSpecs(c: ConvNeXtConfig): ParamSpec[] {
  return [
    ...tableSpecs('stem', stemParams(c)),
    ...stageOptions(c).flatMap((o) => ConvNeXtStage.params(o)),
    ...tableSpecs('head', headNormParams(c)),
    ...headSpecs(c.dims[3], c.numClasses),
  ];
}

export interface ForwardOptions {
  /** Training mode: drop path active. Default false (inference). */
  training?: boolean;
  /** Seed of this pass's random draws (drop path). */
  seed?: number;
  /** Fixed drop-path keep masks (0/1 per sample) by block index in model order, instead of random draws. */
  dropPathMasks?: number[][];
}

export class ConvNeXt {
  readonly config: Readonly<ConvNeXtConfig>;
  readonly featureInfo: readonly FeatureInfo[];
  private readonly store: ParamStore;
  private readonly stages: ConvNeXtStage[];
  private readonly stem: BoundParams<ReturnType<typeof stemParams>>;
  private readonly headNorm: BoundParams<ReturnType<typeof headNormParams>>;
  private classifier: BoundParams<ReturnType<typeof classifierParams>> | null;

  /**
   * @param init 'random' (timm's init), 'zeros', or the weights to start from (names and shapes
   *             checked strictly; each variable takes over its tensor's data without a copy, so a
   *             loaded model holds one copy of its weights; the caller may dispose the tensors after)
   */
  constructor(config: ConvNeXtConfig, seed = 0, init: 'random' | 'zeros' | Map<string, tf.Tensor> = 'random') {
    checkFitsBackend(config);
    this.config = Object.freeze({ ...config });
    this.featureInfo = Object.freeze(featureInfo(config));
    if (init instanceof Map) checkWeightsFit(new Map(parameterSpecs(config).map((p) => [p.name, p.shape])), init, true);
    this.store = new ParamStore(seed, init === 'zeros', init instanceof Map ? init : undefined);
    for (const p of parameterSpecs(config)) this.store.add(p);
    this.stages = stageOptions(config).map((o) => new ConvNeXtStage(this.store, o));
    this.stem = bindParams(this.store, 'stem', stemParams(config));
    this.headNorm = bindParams(this.store, 'head', headNormParams(config));
    this.classifier = config.numClasses > 0 ? bindParams(this.store, 'head', classifierParams(config.dims[3], config.numClasses)) : null;
  }

  private addClassifier(numClasses: number): void {
    for (const p of headSpecs(this.config.dims[3], numClasses)) this.store.add(p, true);
    this.classifier = numClasses > 0 ? bindParams(this.store, 'head', classifierParams(this.config.dims[3], numClasses)) : null;
  }

  /** Classifier outputs (0 when the head has been removed). */
  get numClasses(): number {
    return this.store.has('head.fc.bias') ? this.store.get('head.fc.bias').shape[0] : 0;
  }

  /** Width of the pooled pre-logits embedding (the last stage's channels). */
  get numFeatures(): number {
    return this.config.dims[3];
  }

  private checkInput(x: tf.Tensor): asserts x is tf.Tensor4D {
    const c = this.config;
    if (x.rank !== 4) {
      throw new ShapeError(`input must be an NHWC batch [N, H, W, ${c.inChannels}], got rank ${x.rank} [${x.shape}]`);
    }
    const [, h, w, ch] = x.shape;
    if (ch !== c.inChannels) {
      throw new ShapeError(
        `input must be NHWC [N, H, W, ${c.inChannels}], got [${x.shape}]` +
          (x.shape[1] === c.inChannels ? ' (looks like NCHW: transpose [0, 2, 3, 1] first)' : ''),
      );
    }
    const minSize = c.patchSize * 8;
    if (h < minSize || w < minSize) {
      throw new ShapeError(`input spatial size must be at least ${minSize}x${minSize} (the total stride), got ${h}x${w}`);
    }
    if (x.dtype !== 'float32') throw new ShapeError(`input must be float32, got ${x.dtype}`);
  }

  private ctx(opts: ForwardOptions): ForwardContext {
    return { training: opts.training ?? false, seed: opts.seed, dropPathMasks: opts.dropPathMasks };
  }

  /** Stem: [N, H, W, 3] -> [N, H/4, W/4, d0]. */
  private applyStem(x: tf.Tensor4D): tf.Tensor4D {
    const w = this.stem;
    return stem(x, w.convWeight as tf.Tensor4D, w.convBias as tf.Tensor1D, w.normWeight as tf.Tensor1D, w.normBias as tf.Tensor1D, this.config.lnEps);
  }

  /**
   * Every stage's output, for detection/segmentation backbones (timm features_only).
   * @param x [N, H, W, 3] NHWC
   * @returns four NHWC maps: [N, H/4, W/4, d0], [N, H/8, W/8, d1], [N, H/16, W/16, d2], [N, H/32, W/32, d3]
   */
  forwardStages(x: tf.Tensor4D, opts: ForwardOptions = {}): tf.Tensor4D[] {
    this.checkInput(x);
    const ctx = this.ctx(opts);
    // Kept outside one tidy so that all four maps survive; intermediates are disposed per stage.
    const outs: tf.Tensor4D[] = [];
    const stemOut = this.applyStem(x);
    try {
      let y = stemOut;
      for (const stage of this.stages) {
        y = stage.apply(y, ctx);
        outs.push(y);
      }
      return outs;
    } catch (e) {
      outs.forEach((t) => t.dispose());
      throw e;
    } finally {
      stemOut.dispose();
    }
  }

  /**
   * The last stage's map (timm forward_features).
   * @param x [N, H, W, 3] NHWC
   * @returns [N, H/32, W/32, d3] NHWC
   */
  forwardFeatures(x: tf.Tensor4D, opts: ForwardOptions = {}): tf.Tensor4D {
    this.checkInput(x);
    const ctx = this.ctx(opts);
    return tf.tidy(() => {
      let y = this.applyStem(x);
      for (const stage of this.stages) y = stage.apply(y, ctx);
      return y;
    });
  }

  /**
   * Head: global average pool over H, W -> LayerNorm -> Linear (pool before norm, as the official
   * models, torchvision and HF).
   * @param features [N, h, w, d3] NHWC (output of forwardFeatures)
   * @param opts.preLogits return the pooled, normalised embedding [N, d3] instead of logits
   * @returns [N, numClasses] logits, or [N, d3] with preLogits or when the model has no classifier
   */
  forwardHead(features: tf.Tensor4D, opts: { preLogits?: boolean } = {}): tf.Tensor2D {
    if (features.rank !== 4 || features.shape[3] !== this.config.dims[3]) {
      throw new ShapeError(`forwardHead expects NHWC [N, h, w, ${this.config.dims[3]}], got [${features.shape}]`);
    }
    return tf.tidy(() => {
      const pooled = tf.mean(features, [1, 2]) as tf.Tensor2D;
      const pre = layerNorm(pooled, this.headNorm.normWeight as tf.Tensor1D, this.headNorm.normBias as tf.Tensor1D, this.config.headNormEps);
      if (opts.preLogits || !this.classifier) return pre;
      return linear(pre, this.classifier.fcWeight as tf.Tensor2D, this.classifier.fcBias as tf.Tensor1D);
    });
  }

  /**
   * Full forward pass.
   * @param x [N, H, W, 3] NHWC float32, normalised
   * @returns [N, numClasses] logits (pre-softmax)
   */
  forward(x: tf.Tensor4D, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => this.forwardHead(this.forwardFeatures(x, opts)));
  }

  /**
   * Pooled pre-logits embedding (FB forward_features: pool -> final LN).
   * @param x [N, H, W, 3] NHWC
   * @returns [N, d3]
   */
  embed(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => this.forwardHead(this.forwardFeatures(x), { preLogits: true }));
  }

  /**
   * Replaces the classifier with a freshly initialised one for `numClasses` outputs (0 removes it),
   * as timm's reset_classifier. The head LayerNorm is kept.
   */
  resetClassifier(numClasses: number): void {
    if (!(Number.isInteger(numClasses) && numClasses >= 0)) {
      throw new ConfigError(`resetClassifier: numClasses must be an integer >= 0, got ${numClasses}`);
    }
    this.store.remove('head.fc.');
    this.addClassifier(numClasses);
    (this as { config: Readonly<ConvNeXtConfig> }).config = Object.freeze({ ...this.config, numClasses });
  }

  /** Parameter names in creation order (stem, stages, head). */
  parameterNames(): string[] {
    return this.store.names();
  }

  /** Name, shape and weight-decay flag of every parameter. */
  parameterInfo(): ParamInfo[] {
    return this.store.names().map((n) => this.store.info(n));
  }

  /** The model's live variables by name (owned by the model: do not dispose). */
  getWeights(): Map<string, tf.Variable> {
    return this.store.variables();
  }

  /**
   * Assigns weights by name (TF.js layouts, timm names). strict: the names must match exactly.
   * Throws WeightsError listing missing, unexpected and mis-shaped names; assigns nothing then.
   */
  loadWeights(weights: Map<string, tf.Tensor> | Record<string, tf.Tensor>, opts: { strict?: boolean } = {}): void {
    this.store.assign(weights, opts.strict ?? true);
  }

  /** Number of scalar parameters. */
  numParams(): number {
    return this.store.count();
  }

  /** Frees every weight. The model is unusable afterwards. */
  dispose(): void {
    this.store.dispose();
  }
}
