/**
 * ConvNeXt block (Liu et al. 2022, Fig. 4; Woo et al. 2023 for V2), NHWC throughout:
 *
 *   x -> dwconv 7x7 -> LN -> Linear C->4C -> GELU -> [V2: GRN] -> Linear 4C->C -> [V1: gamma *]
 *     -> drop path -> + x
 *
 * Options are resolved once here (timm style): V1 has layer scale and no GRN, V2 the reverse.
 * Parameter names follow timm: conv_dw, norm, mlp.fc1, mlp.grn, mlp.fc2, gamma.
 */
import * as tf from '@tensorflow/tfjs-core';
import { depthwiseConv } from '../layers/depthwise_conv';
import { dropPath } from '../layers/drop_path';
import { gelu } from '../layers/gelu';
import { grn } from '../layers/grn';
import { layerNorm } from '../layers/layer_norm';
import { layerScale } from '../layers/layer_scale';
import { linear } from '../layers/linear';
import { ParamSpec, ParamStore, ones, spec, truncNormal002, zeros } from '../layers/params';

export interface BlockOptions {
  /** Channels C. */
  dim: number;
  /** Depthwise kernel size (7 in every published model). */
  kernelSize: number;
  /** Hidden width = mlpRatio * C (4). */
  mlpRatio: number;
  /** Layer-scale init (1e-6 in V1); 0 or null disables layer scale (V2). */
  layerScaleInit: number | null;
  /** Global Response Normalization after GELU (V2). */
  useGrn: boolean;
  /** LayerNorm eps (1e-6). */
  lnEps: number;
  /** Stochastic-depth rate of this block. */
  dropPathRate: number;
}

/** Runtime context of a forward pass. */
export interface ForwardContext {
  training: boolean;
  /** Seed for this call's random draws (drop path); varied per step by the trainer. */
  seed?: number;
  /**
   * Given drop-path keep masks instead of random draws: one 0/1 entry per sample for each block, by
   * block index in model order (for parity with another framework's draws).
   */
  dropPathMasks?: number[][];
  /** Index of this block in model order (set by the stage). */
  blockIndex?: number;
}

export class ConvNeXtBlock {
  readonly dwWeight: tf.Variable;
  readonly dwBias: tf.Variable;
  readonly normWeight: tf.Variable;
  readonly normBias: tf.Variable;
  readonly fc1Weight: tf.Variable;
  readonly fc1Bias: tf.Variable;
  readonly grnWeight: tf.Variable | null;
  readonly grnBias: tf.Variable | null;
  readonly fc2Weight: tf.Variable;
  readonly fc2Bias: tf.Variable;
  readonly gamma: tf.Variable | null;

  /** The parameters a block with these options declares (timm names, TF.js layouts). */
  static params(prefix: string, options: BlockOptions): ParamSpec[] {
    const { dim: c, kernelSize: k, mlpRatio } = options;
    const hidden = mlpRatio * c;
    return [
      spec(`${prefix}.conv_dw.weight`, [k, k, c, 1], truncNormal002),
      spec(`${prefix}.conv_dw.bias`, [c], zeros),
      spec(`${prefix}.norm.weight`, [c], ones),
      spec(`${prefix}.norm.bias`, [c], zeros),
      spec(`${prefix}.mlp.fc1.weight`, [c, hidden], truncNormal002),
      spec(`${prefix}.mlp.fc1.bias`, [hidden], zeros),
      ...(options.useGrn ? [spec(`${prefix}.mlp.grn.weight`, [hidden], zeros), spec(`${prefix}.mlp.grn.bias`, [hidden], zeros)] : []),
      spec(`${prefix}.mlp.fc2.weight`, [hidden, c], truncNormal002),
      spec(`${prefix}.mlp.fc2.bias`, [c], zeros),
      ...(options.layerScaleInit ? [spec(`${prefix}.gamma`, [c], { kind: 'constant', value: options.layerScaleInit })] : []),
    ];
  }

  /** Binds to the block's variables in `store` (created by the model from `params`). */
  constructor(
    store: ParamStore,
    readonly prefix: string,
    readonly options: BlockOptions,
  ) {
    const get = (n: string) => store.get(`${prefix}.${n}`);
    const maybe = (n: string) => (store.has(`${prefix}.${n}`) ? store.get(`${prefix}.${n}`) : null);
    this.dwWeight = get('conv_dw.weight');
    this.dwBias = get('conv_dw.bias');
    this.normWeight = get('norm.weight');
    this.normBias = get('norm.bias');
    this.fc1Weight = get('mlp.fc1.weight');
    this.fc1Bias = get('mlp.fc1.bias');
    this.grnWeight = options.useGrn ? get('mlp.grn.weight') : null;
    this.grnBias = options.useGrn ? get('mlp.grn.bias') : null;
    this.fc2Weight = get('mlp.fc2.weight');
    this.fc2Bias = get('mlp.fc2.bias');
    this.gamma = options.layerScaleInit ? maybe('gamma') : null;
  }

  /**
   * @param x [N, H, W, C] NHWC
   * @returns [N, H, W, C]
   */
  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    return tf.tidy(() => {
      let y = depthwiseConv(x, this.dwWeight as tf.Tensor4D, this.dwBias as tf.Tensor1D);
      y = layerNorm(y, this.normWeight as tf.Tensor1D, this.normBias as tf.Tensor1D, this.options.lnEps);
      y = gelu(linear(y, this.fc1Weight as tf.Tensor2D, this.fc1Bias as tf.Tensor1D));
      if (this.grnWeight && this.grnBias) y = grn(y, this.grnWeight as tf.Tensor1D, this.grnBias as tf.Tensor1D);
      y = linear(y, this.fc2Weight as tf.Tensor2D, this.fc2Bias as tf.Tensor1D);
      if (this.gamma) y = layerScale(y, this.gamma as tf.Tensor1D);
      const mask = ctx.dropPathMasks && ctx.blockIndex !== undefined ? ctx.dropPathMasks[ctx.blockIndex] : undefined;
      y = dropPath(y, this.options.dropPathRate, ctx.training, ctx.seed, mask);
      return tf.add(x, y);
    });
  }
}
