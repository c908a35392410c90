/**
 * FCMAE pretraining's replica task for the data-parallel engine (src/train/data_parallel): a share
 * of a micro-batch (RandomResizedCrop scale (0.2, 1) + flip, ImageNet normalisation, FB2
 * main_pretrain's transform), one random patch mask per image keyed by (seed, epoch, micro-batch,
 * global sample index) so the masks do not depend on the worker count, the norm-pix loss and its
 * gradients. The loss is a mean over masked patches and every image masks the same number, so the
 * count-weighted mean of the shares' losses is the batch's loss; for the same reason a share larger
 * than chunkSize is computed in chunks (src/train/data_parallel/chunks.ts), except with grnStats
 * 'batch', whose GRN statistics pool over the whole batch. pretrain.ts runs it in this thread
 * (workers 1); the engine's workers load this module by path (createReplicaTask).
 */
import * as tf from '@tensorflow/tfjs-core';
import { normalizeImage } from '../data/transforms';
import { ConvNeXtConfig } from '../model/configs';
import { trainTransform } from '../train/augment';
import { Sample, decodeChunk, epochOrder } from '../train/dataset';
import { ChunkSize, chunkLimit, chunkRanges, chunkResult, computeInChunks, withHeapError } from '../train/data_parallel/chunks';
import { autoChunkSize } from '../train/data_parallel/footprint';
import { MicroRef, ReplicaTask, ShareResult, SkipHook } from '../train/data_parallel/task';
import { Fcmae } from './fcmae';
import { FCMAE_PATCH, PatchMask, randomMask } from './mask';
import { GrnStats } from './masked_grn';

/** The compiled path of this module, for the engine's workers. */
export const FCMAE_TASK_MODULE = __filename;

/** Everything an FCMAE replica needs (plain data: it travels to the workers). */
export interface FcmaeTaskOptions {
  config: ConvNeXtConfig;
  decoderDim: number;
  decoderDepth: number;
  maskRatio: number;
  grnStats: GrnStats;
  samples: Sample[];
  /** Global micro-batch size. */
  batchSize: number;
  imageSize: number;
  seed: number;
  /** Samples computed at once (chunks.ts; default 'auto'); ignored with grnStats 'batch' (pretrain refuses a number). */
  chunkSize?: ChunkSize;
}

/** PretrainOptions' names for OutOfMemoryError. */
const PRETRAIN_FIXES = { chunkSize: 'chunkSize', batchSize: 'batchSize', accumSteps: 'accum', workers: 'workers' };

interface FcmaeShare {
  x: Float32Array;
  shape: [number, number, number, number];
  positions: number[];
}

/** The masks of a share: each image's own seeded draw (randomMask of one image), stacked. */
export function shareMasks(positions: readonly number[], l: number, ratio: number, seed: number, ref: Pick<MicroRef, 'epoch' | 'batch'>): PatchMask {
  const data = new Float32Array(positions.length * l);
  positions.forEach((g, i) => data.set(randomMask(1, l, ratio, `mask-${seed}-${ref.epoch}-${ref.batch}-${g}`).data, i * l));
  return { n: positions.length, l, data };
}

export class FcmaeTask implements ReplicaTask<FcmaeShare> {
  readonly variables: Map<string, tf.Variable>;
  private readonly byTfName: Map<string, string>;
  private order: { epoch: number; samples: Sample[] } | null = null;
  /** The most samples computed at once (Infinity: the whole share). */
  readonly chunkLimit: number;

  constructor(
    readonly f: Fcmae,
    readonly o: FcmaeTaskOptions,
    private readonly onSkip: SkipHook,
  ) {
    this.variables = f.parameters();
    this.byTfName = new Map([...this.variables].map(([k, v]) => [v.name, k]));
    const decoder = { dim: o.decoderDim, depth: o.decoderDepth, patch: FCMAE_PATCH };
    this.chunkLimit = o.grnStats === 'batch' ? Infinity : chunkLimit(o.chunkSize, tf.getBackend(), () => autoChunkSize(o.config, o.imageSize, decoder));
  }

  async load(ref: MicroRef, [start, end]: readonly [number, number]): Promise<FcmaeShare> {
    if (this.order?.epoch !== ref.epoch) this.order = { epoch: ref.epoch, samples: epochOrder(this.o.samples, true, `${this.o.seed}-${ref.epoch}`) };
    const base = ref.batch * this.o.batchSize;
    const size = this.o.imageSize;
    const d = await decodeChunk(
      this.order.samples.slice(base + start, base + end),
      size,
      (img, rng) => normalizeImage(trainTransform(img, rng, { size, scale: [0.2, 1], autoAugment: 'none' })).data,
      `${this.o.seed}-${ref.epoch}`,
      (file, e) => this.onSkip(file, e.message),
    );
    return { x: d.x, shape: d.shape, positions: d.positions.map((p) => p + start) };
  }

  async compute(s: FcmaeShare, ref: MicroRef): Promise<ShareResult> {
    const n = s.shape[0];
    if (n === 0) return { grads: new Map(), n: 0, lossSum: 0, correct: 0 };
    const mask = shareMasks(s.positions, (this.o.imageSize / FCMAE_PATCH) ** 2, this.f.maskRatio, this.o.seed, ref);
    const ranges = chunkRanges(s.positions, this.chunkLimit);
    const chunk = Math.max(...ranges.map(([a, b]) => b - a));
    return withHeapError({ chunk, share: n, imageSize: this.o.imageSize }, PRETRAIN_FIXES, () =>
      computeInChunks(ranges, ([a, b]) => this.computeChunk(s, mask, a, b)),
    );
  }

  /** Forward and backward on the share's images [a, b) with their rows of the share's masks. */
  private async computeChunk(s: FcmaeShare, mask: PatchMask, a: number, b: number): Promise<ShareResult> {
    const [, h, w, c] = s.shape;
    const x = tf.tensor4d(s.x.subarray(a * h * w * c, b * h * w * c), [b - a, h, w, c]);
    const part: PatchMask = { n: b - a, l: mask.l, data: mask.data.subarray(a * mask.l, b * mask.l) };
    try {
      const out = tf.variableGrads(() => this.f.loss(x, part), [...this.variables.values()]);
      return await chunkResult(out, (k) => this.byTfName.get(k)!, b - a);
    } finally {
      x.dispose();
    }
  }

  dispose(): void {
    this.f.dispose();
  }
}

/** Worker entry point: a replica with zero weights, loaded by the engine from shared memory. */
export function createReplicaTask(o: FcmaeTaskOptions, onSkip: SkipHook): FcmaeTask {
  const f = new Fcmae(o.config, { decoderDim: o.decoderDim, decoderDepth: o.decoderDepth, maskRatio: o.maskRatio, grnStats: o.grnStats, init: 'zeros' });
  return new FcmaeTask(f, o, onSkip);
}
