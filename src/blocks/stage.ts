/**
 * A ConvNeXt stage: for stages 1-3 a downsampling layer (LN + conv 2x2/s2) first, then `depth`
 * blocks at constant width. Stage 0 has no downsample: the stem already reduced by 4.
 * Parameter names follow timm: stages.{i}.downsample.{norm,conv}, stages.{i}.blocks.{j}.
 */
import * as tf from '@tensorflow/tfjs-core';
import { downsample } from '../layers/downsample';
import { BoundParams, ParamSpec, ParamStore, ParamTable, bindParams, ones, tableSpecs, truncNormal002, zeros } from '../layers/params';
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

/** A stage's downsampling layer (stages 1-3), declared once: LN over Cin, then conv 2x2/s2 Cin -> C. */
function downsampleParams(o: StageOptions) {
  return {
    normWeight: ['norm.weight', [o.inDim], ones],
    normBias: ['norm.bias', [o.inDim], zeros],
    convWeight: ['conv.weight', [2, 2, o.inDim, o.dim], truncNormal002],
    convBias: ['conv.bias', [o.dim], zeros],
  } satisfies ParamTable;
}

export class ConvNeXtStage {
  readonly blocks: ConvNeXtBlock[];
  readonly downsample: BoundParams<ReturnType<typeof downsampleParams>> | null;

  private static blockOptions(options: StageOptions, j: number): BlockOptions {
    return { ...options.block, dim: options.dim, dropPathRate: options.dropPathRates[j] };
  }

  /** The parameters of the stage: its downsample (stages 1-3) and its blocks. */
  static params(options: StageOptions): ParamSpec[] {
    const p = `stages.${options.index}`;
    const ds = options.index > 0 ? tableSpecs(`${p}.downsample`, downsampleParams(options)) : [];
    return [...ds, ...options.dropPathRates.flatMap((_, j) => ConvNeXtBlock.params(`${p}.blocks.${j}`, ConvNeXtStage.blockOptions(options, j)))];
  }

  constructor(
    store: ParamStore,
    readonly options: StageOptions,
  ) {
    const p = `stages.${options.index}`;
    this.downsample = options.index > 0 ? bindParams(store, `${p}.downsample`, downsampleParams(options)) : null;
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
