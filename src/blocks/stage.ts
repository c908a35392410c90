/**
 * A ConvNeXt stage: for stages 1-3 a downsampling layer (LN + conv 2x2/s2) first, then `depth`
 * blocks at constant width. Stage 0 has no downsample: the stem already reduced by 4.
 * Parameter names follow timm: stages.{i}.downsample.{norm,conv}, stages.{i}.blocks.{j}.
 */
import * as tf from '@tensorflow/tfjs-core';
import { downsample } from '../layers/downsample';
import { ParamSpec, ParamStore, ones, spec, truncNormal002, zeros } from '../layers/params';
import { BlockOptions, ConvNeXtBlock, ForwardContext } from './convnext_block';

export interface StageOptions {
  index: number;
  inDim: number;
  dim: number;
  depth: number;
  /** Model-order index of this stage's first block. */
  firstBlockIndex: number;
  /** Per-block drop-path rates, length `depth`. */
  dropPathRates: number[];
  block: Omit<BlockOptions, 'dim' | 'dropPathRate'>;
}

export class ConvNeXtStage {
  readonly blocks: ConvNeXtBlock[];
  readonly downsample: {
    normWeight: tf.Variable;
    normBias: tf.Variable;
    convWeight: tf.Variable;
    convBias: tf.Variable;
  } | null;

  private static blockOptions(options: StageOptions, j: number): BlockOptions {
    return { ...options.block, dim: options.dim, dropPathRate: options.dropPathRates[j] };
  }

  /** The parameters of the stage: its downsample (stages 1-3) and its blocks. */
  static params(options: StageOptions): ParamSpec[] {
    const p = `stages.${options.index}`;
    const { inDim, dim } = options;
    const ds =
      options.index > 0
        ? [
            spec(`${p}.downsample.norm.weight`, [inDim], ones),
            spec(`${p}.downsample.norm.bias`, [inDim], zeros),
            spec(`${p}.downsample.conv.weight`, [2, 2, inDim, dim], truncNormal002),
            spec(`${p}.downsample.conv.bias`, [dim], zeros),
          ]
        : [];
    return [...ds, ...options.dropPathRates.flatMap((_, j) => ConvNeXtBlock.params(`${p}.blocks.${j}`, ConvNeXtStage.blockOptions(options, j)))];
  }

  constructor(
    store: ParamStore,
    readonly options: StageOptions,
  ) {
    const p = `stages.${options.index}`;
    this.downsample =
      options.index > 0
        ? {
            normWeight: store.get(`${p}.downsample.norm.weight`),
            normBias: store.get(`${p}.downsample.norm.bias`),
            convWeight: store.get(`${p}.downsample.conv.weight`),
            convBias: store.get(`${p}.downsample.conv.bias`),
          }
        : null;
    this.blocks = options.dropPathRates.map((_, j) => new ConvNeXtBlock(store, `${p}.blocks.${j}`, ConvNeXtStage.blockOptions(options, j)));
  }

  /**
   * @param x [N, H, W, inDim] NHWC
   * @returns [N, H/2, W/2, dim] (stage 0: [N, H, W, dim])
   */
  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    return tf.tidy(() => {
      let y = x;
      const ds = this.downsample;
      if (ds) {
        y = downsample(
          y,
          ds.normWeight as tf.Tensor1D,
          ds.normBias as tf.Tensor1D,
          ds.convWeight as tf.Tensor4D,
          ds.convBias as tf.Tensor1D,
          this.options.block.lnEps,
        );
      }
      // Each block gets its own seed so that drop-path masks differ between blocks.
      this.blocks.forEach((b, j) => {
        const blockIndex = this.options.firstBlockIndex + j;
        y = b.apply(y, { ...ctx, blockIndex, seed: ctx.seed === undefined ? undefined : ctx.seed * 1009 + blockIndex });
      });
      return y;
    });
  }
}
