/**
 * ConvNeXt block (Liu et al. 2022, Fig. 4; Woo et al. 2023 for V2), NHWC throughout:
 *
 *   x -> dwconv 7x7 -> LN -> Linear C->4C -> GELU -> [V2: GRN] -> Linear 4C->C -> [V1: gamma *]
 *     -> drop path -> + x                    (eval, V1: x + gamma * y as one op, scaledResidual)
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
import { scaledResidual } from '../layers/scaled_residual';
import { BoundParams, ParamSpec, ParamStore, ParamTable, bindParams, ones, tableSpecs, truncNormal002, zeros } from '../layers/params';

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

/** The block's parameters, declared once for both the spec and the binding (timm names, TF.js layouts). */
function blockParams(o: BlockOptions) {
  const { dim: c, kernelSize: k, mlpRatio } = o;
  const hidden = mlpRatio * c;
  return {
    dwWeight: ['conv_dw.weight', [k, k, c, 1], truncNormal002],
    dwBias: ['conv_dw.bias', [c], zeros],
    normWeight: ['norm.weight', [c], ones],
    normBias: ['norm.bias', [c], zeros],
    fc1Weight: ['mlp.fc1.weight', [c, hidden], truncNormal002],
    fc1Bias: ['mlp.fc1.bias', [hidden], zeros],
    grnWeight: o.useGrn ? ['mlp.grn.weight', [hidden], zeros] : null,
    grnBias: o.useGrn ? ['mlp.grn.bias', [hidden], zeros] : null,
    fc2Weight: ['mlp.fc2.weight', [hidden, c], truncNormal002],
    fc2Bias: ['mlp.fc2.bias', [c], zeros],
    gamma: o.layerScaleInit ? ['gamma', [c], { kind: 'constant', value: o.layerScaleInit }] : null,
  } satisfies ParamTable;
}

export class ConvNeXtBlock {
  /** The block's variables, by field of blockParams. */
  readonly w: BoundParams<ReturnType<typeof blockParams>>;

  /** The parameters a block with these options declares. */
  static params(prefix: string, options: BlockOptions): ParamSpec[] {
    return tableSpecs(prefix, blockParams(options));
  }

  /** Binds to the block's variables in `store` (created by the model from `params`). */
  constructor(
    store: ParamStore,
    readonly prefix: string,
    readonly options: BlockOptions,
  ) {
    this.w = bindParams(store, prefix, blockParams(options));
  }

  /**
   * @param x [N, H, W, C] NHWC
   * @returns [N, H, W, C]
   */
  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    return tf.tidy(() => {
      const w = this.w;
      let y = depthwiseConv(x, w.dwWeight as tf.Tensor4D, w.dwBias as tf.Tensor1D);
      y = layerNorm(y, w.normWeight as tf.Tensor1D, w.normBias as tf.Tensor1D, this.options.lnEps);
      y = gelu(linear(y, w.fc1Weight as tf.Tensor2D, w.fc1Bias as tf.Tensor1D));
      if (w.grnWeight && w.grnBias) y = grn(y, w.grnWeight as tf.Tensor1D, w.grnBias as tf.Tensor1D);
      y = linear(y, w.fc2Weight as tf.Tensor2D, w.fc2Bias as tf.Tensor1D);
      // In eval drop path is the identity: layer scale and residual as one op (one kernel on wasm).
      // Training keeps the two ops and drop path between them.
      if (w.gamma && !ctx.training) return scaledResidual(x, y, w.gamma as tf.Tensor1D);
      if (w.gamma) y = layerScale(y, w.gamma as tf.Tensor1D);
      const mask = ctx.dropPathMasks && ctx.blockIndex !== undefined ? ctx.dropPathMasks[ctx.blockIndex] : undefined;
      y = dropPath(y, this.options.dropPathRate, ctx.training, ctx.seed, mask);
      return tf.add(x, y);
    });
  }
}
