/**
 * The classifier's replica task (task.ts): a share of a micro-batch from an image folder (train
 * transform, normalisation) or synthetic data (the training benchmark), label-smoothed soft targets,
 * Mixup/CutMix paired within the share, drop path with keep masks keyed by global sample index,
 * softmax cross-entropy (timm's SoftTargetCrossEntropy) and its gradients, computed in chunks of at
 * most chunkSize samples when the share is larger (chunks.ts: the draw and the masks are made for the
 * share, so chunks change nothing but the float summation order). The trainer runs it in this thread
 * (workers 1) and the engine's workers load this module by path (createReplicaTask).
 */
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import { normalizeImage } from '../../data/transforms';
import { dropPathSchedule } from '../../layers/drop_path';
import { ConvNeXtConfig } from '../../model/configs';
import { ConvNeXt } from '../../model/convnext';
import { TrainTransformOptions, applyMix, drawMix, trainTransform } from '../augment';
import { Sample, decodeChunk, epochOrder } from '../dataset';
import { smoothOneHot, softCrossEntropy } from '../loss';
import { OutOfMemoryError } from '../../errors';
import { ChunkSize, chunkLimit, chunkRanges, chunkResult, computeInChunks, withHeapError } from './chunks';
import { autoChunkSize } from './footprint';
import { MicroRef, ReplicaTask, ShareResult, SkipHook, dropPathKeepMasks, pairPartners } from './task';

/** The compiled path of this module, for the engine's workers. */
export const CLASSIFY_TASK_MODULE = __filename;

/** Everything a classifier replica needs (plain data: it travels to the workers). */
export interface ClassifyTaskOptions {
  config: ConvNeXtConfig;
  /** Training samples; null: synthetic random data (benchmark). */
  samples: Sample[] | null;
  /** Global micro-batch size. */
  batchSize: number;
  seed: number;
  /** RandomResizedCrop, flip, auto-augment: trainTransform's options (size = the training resolution). */
  transform: TrainTransformOptions;
  mean: number[];
  std: number[];
  labelSmoothing: number;
  mixup: number;
  cutmix: number;
  /** Trainable parameter names (the others get no gradient). */
  trainable: string[];
  /** Samples computed at once (chunks.ts); default 'auto'. */
  chunkSize?: ChunkSize;
  /** The option names an OutOfMemoryError tells the user to change (default: TrainOptions'). */
  fixes?: OutOfMemoryError['detail']['fixes'];
}

/** TrainOptions' names for OutOfMemoryError. */
const TRAIN_FIXES = { chunkSize: 'chunkSize', batchSize: 'batchSize', accumSteps: 'accumSteps', workers: 'workers' };

interface ClassifyShare {
  x: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
  positions: number[];
}

export class ClassifyTask implements ReplicaTask<ClassifyShare> {
  readonly variables: Map<string, tf.Variable>;
  private readonly trainable: tf.Variable[];
  private readonly byTfName: Map<string, string>;
  private readonly rates: number[];
  /** The most samples computed at once (Infinity: the whole share). */
  readonly chunkLimit: number;
  private order: { epoch: number; samples: Sample[] } | null = null;
  /** Synthetic shares, made once per micro-batch and share (the benchmark repeats one batch). */
  private readonly synthetic = new Map<string, ClassifyShare>();

  constructor(
    readonly model: ConvNeXt,
    readonly o: ClassifyTaskOptions,
    private readonly onSkip: SkipHook,
  ) {
    this.variables = model.getWeights();
    this.trainable = o.trainable.map((k) => this.variables.get(k)!);
    this.byTfName = new Map(o.trainable.map((k) => [this.variables.get(k)!.name, k]));
    this.rates = dropPathSchedule(model.config.depths, model.config.dropPathRate).flat();
    this.chunkLimit = chunkLimit(o.chunkSize, tf.getBackend(), () => autoChunkSize(model.config, o.transform.size));
  }

  private epochSamples(epoch: number): Sample[] {
    if (this.order?.epoch !== epoch) this.order = { epoch, samples: epochOrder(this.o.samples!, true, `${this.o.seed}-${epoch}`) };
    return this.order.samples;
  }

  async load(ref: MicroRef, [start, end]: readonly [number, number]): Promise<ClassifyShare> {
    const size = this.o.transform.size;
    if (!this.o.samples) {
      // Synthetic: seeded normal noise per global sample index, labels spread over the classes.
      const id = `${ref.batch}:${start}:${end}`;
      const made = this.synthetic.get(id);
      if (made) return { ...made, x: made.x.slice() };
      const positions = Array.from({ length: end - start }, (_, i) => start + i);
      const per = size * size * 3;
      const x = new Float32Array(positions.length * per);
      positions.forEach((g, i) => {
        const rng = seedrandom(`synthetic-${this.o.seed}-${ref.batch}-${g}`);
        for (let k = 0; k < per; k++) x[i * per + k] = Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
      });
      const labels = Int32Array.from(positions, (g) => (g * 7919) % this.o.config.numClasses);
      const share: ClassifyShare = { x, shape: [positions.length, size, size, 3], labels, positions };
      this.synthetic.set(id, share);
      return { ...share, x: x.slice() };
    }
    const base = ref.batch * this.o.batchSize;
    const chunk = this.epochSamples(ref.epoch).slice(base + start, base + end);
    const { mean, std } = this.o;
    const d = await decodeChunk(
      chunk,
      size,
      (img, rng) => normalizeImage(trainTransform(img, rng, this.o.transform), mean, std).data,
      `${this.o.seed}-${ref.epoch}`,
      (file, e) => this.onSkip(file, e.message),
    );
    return { x: d.x, shape: d.shape, labels: d.labels, positions: d.positions.map((p) => p + start) };
  }

  async compute(s: ClassifyShare, ref: MicroRef): Promise<ShareResult> {
    const n = s.labels.length;
    if (n === 0) return { grads: new Map(), n: 0, lossSum: 0, correct: 0 };
    const K = this.o.config.numClasses;
    const { seed } = this.o;
    const smoothed = smoothOneHot(s.labels, K, this.o.labelSmoothing);
    let targets = (await smoothed.data()) as Float32Array;
    smoothed.dispose();
    // One draw per global micro-batch, applied to the whole share before it is chunked.
    const draw =
      this.o.mixup > 0 || this.o.cutmix > 0
        ? drawMix(seedrandom(`mix-${seed}-${ref.step}-${ref.micro}`), s.shape[1], s.shape[2], { mixupAlpha: this.o.mixup, cutmixAlpha: this.o.cutmix })
        : null;
    if (draw) targets = applyMix(s.x, s.shape, targets, K, draw, pairPartners(s.positions));
    const masks = this.model.config.dropPathRate > 0 ? dropPathKeepMasks(this.rates, s.positions, seed, ref) : undefined;
    const ranges = chunkRanges(s.positions, this.chunkLimit);
    const chunk = Math.max(...ranges.map(([a, b]) => b - a));
    return withHeapError({ chunk, share: n, imageSize: s.shape[1] }, this.o.fixes ?? TRAIN_FIXES, () =>
      computeInChunks(ranges, ([a, b]) => this.computeChunk(s, targets, masks, a, b)),
    );
  }

  /** Forward and backward on the share's samples [a, b) (mixed targets and keep masks already made). */
  private async computeChunk(s: ClassifyShare, targets: Float32Array, masks: number[][] | undefined, a: number, b: number): Promise<ShareResult> {
    const K = this.o.config.numClasses;
    const [, h, w, c] = s.shape;
    const x = tf.tensor4d(s.x.subarray(a * h * w * c, b * h * w * c), [b - a, h, w, c]);
    const t = tf.tensor2d(targets.subarray(a * K, b * K), [b - a, K]);
    const chunkMasks = masks && (a > 0 || b < s.labels.length) ? masks.map((m) => m.slice(a, b)) : masks;
    let argmax: tf.Tensor | null = null;
    try {
      const out = tf.variableGrads(() => {
        const logits = this.model.forward(x, { training: true, dropPathMasks: chunkMasks });
        // Kept and read after the step: no synchronous read inside (webgpu has none in Node).
        argmax = tf.keep(tf.argMax(logits, -1));
        return softCrossEntropy(logits, t);
      }, this.trainable);
      return await chunkResult(
        out,
        (k) => this.byTfName.get(k)!,
        b - a,
        async () => {
          const pred = await argmax!.data();
          let correct = 0;
          for (let i = a; i < b; i++) if (pred[i - a] === s.labels[i]) correct++;
          return correct;
        },
      );
    } finally {
      tf.dispose([x, t]);
      if (argmax) (argmax as tf.Tensor).dispose();
    }
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** Worker entry point (engine.ts loads this module by path): a replica with zero weights, loaded by the engine. */
export function createReplicaTask(o: ClassifyTaskOptions, onSkip: SkipHook): ClassifyTask {
  return new ClassifyTask(new ConvNeXt(o.config, 0, 'zeros'), o, onSkip);
}
