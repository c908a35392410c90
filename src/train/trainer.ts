/**
 * Fine-tuning / training on an image folder, the timm train script's essentials from TypeScript:
 * AdamW (no decay on norms, biases, layer scale, GRN), cosine schedule with linear warmup, layer-wise
 * lr decay, label smoothing, drop path, mixup/cutmix, EMA, gradient accumulation, freezing, head
 * re-initialised for a new class count. Seeded: the data order, augmentations and drop-path masks
 * derive from (seed, epoch, step), so a resumed run continues exactly as an uninterrupted one.
 *
 * Every epoch writes <out>/checkpoint.safetensors atomically (checkpoint.ts), then appends a line to
 * <out>/log.jsonl: a kill between the two leaves a log one line short, never ahead, and a resume
 * truncates the log to the checkpoint's epoch. The end writes the final model as a model directory
 * (<out>/model, and <out>/model-ema with EMA) plus <out>/report.json (top-1/top-5, confusion).
 * The library prints nothing: progress goes through `onEvent`. Evaluation (evaluate.ts), the
 * checkpoint format (checkpoint.ts) and the starting model and freezing (init.ts) live apart.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import '../backend'; // op gradients and the wasm training kernels
import { ConvNeXtError } from '../errors';
import { RgbImage } from '../data/image';
import { LoadProgress } from '../factory/load';
import { normalizeImage } from '../data/transforms';
import { writeModelDir } from '../io/model_dir';
import { readTensors } from '../util/tensors';
import { resolveConfig } from '../model/configs';
import { ConvNeXt } from '../model/convnext';
import { ModelMeta } from '../model/meta';
import { PreprocessingInfo, evalPreprocessing } from '../model/preprocessing';
import { SkippedEntry, writeFileAtomic } from '../util/fs';
import { AdamW } from './adamw';
import { Rng, mixBatch, trainTransform } from './augment';
import { CHECKPOINT_FILE, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { Sample, batchCount, batches, scanImageFolder, splitTrainVal } from './dataset';
import { ModelEma } from './ema';
import { evaluate } from './evaluate';
import { Freeze, initialModel, trainableNames } from './init';
import { paramGroups } from './layer_decay';
import { smoothOneHot, softCrossEntropy } from './loss';
import { EvalMetrics } from './metrics';
import { ResolvedTrainOptions, validateTrainOptions, withTrainDefaults } from './options';
import { cosineLr } from './schedule';

export interface TrainOptions {
  /** Train folder: one subfolder per class. */
  data: string;
  /** Validation folder (same class names), or use valSplit. */
  val?: string;
  /** Fraction of `data` held out for validation (seeded, stratified). */
  valSplit?: number;
  /** Architecture (registry name); with `init`, it must match the initial weights' architecture. */
  arch: string;
  /** Initial weights: zoo name, converted dir/URL, or checkpoint. Without: the seeded official init. */
  init?: string;
  epochs: number;
  imageSize: number;
  batchSize: number;
  /** Peak learning rate (after warmup). */
  lr: number;
  out: string;
  /** Continue from <out>/checkpoint.safetensors. */
  resume?: boolean;
  minLr?: number;
  warmupEpochs?: number;
  weightDecay?: number;
  /** Layer-wise lr decay (FB fine-tuning: 0.7-0.8); 1 = off. */
  layerDecay?: number;
  labelSmoothing?: number;
  dropPathRate?: number;
  /** EMA decay (e.g. 0.9999); absent = no EMA. */
  emaDecay?: number;
  /** Micro-batches per optimizer step. */
  accumSteps?: number;
  /** 'head' trains the head only; a number k freezes the stem and stages 0..k-1. */
  freeze?: Freeze;
  mixup?: number;
  cutmix?: number;
  /** Automatic augmentation, timm's --aa: 'none' (default), 'trivial' (TrivialAugmentWide) or RandAugment 'rand-m9-mstd0.5-inc1'. */
  autoAugment?: string;
  /** @deprecated use autoAugment: true means 'trivial', false 'none'. */
  trivialAugment?: boolean;
  /** RandomResizedCrop area fraction range [min, max] (default [0.08, 1]). */
  scale?: readonly [number, number];
  /** RandomResizedCrop aspect ratio range [min, max] (default [3/4, 4/3]). */
  ratio?: readonly [number, number];
  seed?: number;
  /** Batches decoded ahead (default 2). */
  prefetch?: number;
  /** Stop after this many epochs in this call (for tests of resume); the schedule still spans `epochs`. */
  stopAfterEpochs?: number;
  onEvent?: (e: TrainEvent) => void;
}

export type TrainEvent =
  | {
      type: 'start';
      epochs: number;
      stepsPerEpoch: number;
      trainImages: number;
      valImages: number;
      classes: string[];
      resumedFromEpoch: number;
      params: number;
      trainable: number;
    }
  | { type: 'step'; epoch: number; batch: number; batches: number; loss: number; acc: number; lr: number; imagesPerSec: number; etaSec: number }
  | { type: 'load'; progress: LoadProgress }
  | { type: 'skip'; file: string; reason: string }
  | { type: 'epoch'; record: EpochRecord };

export interface EpochRecord {
  epoch: number;
  train_loss: number;
  train_acc: number;
  val_top1: number;
  val_top5: number;
  val_loss: number;
  ema_val_top1?: number;
  lr: number;
  /** Training images per second (the epoch's training loop; validation excluded). */
  images_per_s: number;
  /** Whole epoch, validation included. */
  seconds: number;
}

export interface TrainReport {
  classes: string[];
  epochs: number;
  final: EvalMetrics;
  ema?: EvalMetrics;
  history: EpochRecord[];
  modelDir: string;
  seconds: number;
}

/** The run's data: training samples, validation samples (folder or seeded split) and classes. */
function loadData(o: ResolvedTrainOptions, seed: number, onSkip: (s: SkippedEntry) => void): { train: Sample[]; val: Sample[]; classes: string[] } {
  const set = scanImageFolder(o.data, undefined, onSkip);
  if (o.val) return { train: set.samples, val: scanImageFolder(o.val, set.classes, onSkip).samples, classes: set.classes };
  if (o.valSplit) {
    const s = splitTrainVal(set, o.valSplit, seed);
    return { train: s.train.samples, val: s.val.samples, classes: set.classes };
  }
  return { train: set.samples, val: [], classes: set.classes };
}

/** Keeps the log consistent with the checkpoint it resumes from: lines after its epoch are dropped. */
function truncateLog(file: string, epochs: number): void {
  if (!fs.existsSync(file)) return;
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim());
  const kept = lines.filter((l) => {
    try {
      return (JSON.parse(l) as { epoch?: number }).epoch! <= epochs;
    } catch {
      return false; // a torn line from a kill mid-append
    }
  });
  if (kept.length !== lines.length) writeFileAtomic(file, kept.map((l) => l + '\n').join(''));
}

/** Optimizer-side state of a run: what trains, AdamW, EMA, and the position in the schedule. */
interface RunState {
  model: ConvNeXt;
  /** Trainable variables by parameter name. */
  params: Map<string, tf.Variable>;
  /** Every variable (EMA follows all of them). */
  all: Map<string, tf.Variable>;
  opt: AdamW;
  ema: ModelEma | null;
  step: number;
  lrAt: (step: number) => number;
}

interface EpochTotals {
  seen: number;
  lossSum: number;
  correct: number;
  trainSecs: number;
}

/** One epoch of training steps (gradient accumulation over micro-batches, one AdamW step each). */
async function trainEpoch(
  o: ResolvedTrainOptions,
  r: RunState,
  samples: Sample[],
  K: number,
  epoch: number,
  ctx: {
    seed: number;
    stepsPerEpoch: number;
    endEpoch: number;
    pre: PreprocessingInfo;
    emit: (e: TrainEvent) => void;
    onSkip: (file: string, e: Error) => void;
  },
): Promise<EpochTotals> {
  const te = Date.now();
  const accum = o.accumSteps;
  const byTfName = new Map([...r.params].map(([k, v]) => [v.name, k]));
  let seen = 0;
  let lossSum = 0;
  let correct = 0;
  let micro = 0;
  let acc: Map<string, tf.Tensor> | null = null;
  const nb = ctx.stepsPerEpoch * accum;
  let bi = 0;
  const mixRng: Rng = seedrandom(`mix-${ctx.seed}-${epoch}`);
  try {
    for await (const b of batches(samples, {
      batchSize: o.batchSize,
      size: o.imageSize,
      transform: (img, rng) =>
        evalTransformOf(trainTransform(img, rng, { size: o.imageSize, autoAugment: o.autoAugment, scale: o.scale, ratio: o.ratio }), ctx.pre),
      shuffle: true,
      dropLast: true,
      seed: `${ctx.seed}-${epoch}`,
      prefetch: o.prefetch,
      onSkip: ctx.onSkip,
    })) {
      if (bi >= nb) break;
      bi++;
      const n = b.labels.length;
      let targets = smoothOneHot(b.labels, K, o.labelSmoothing);
      if (o.mixup > 0 || o.cutmix > 0) {
        const mixed = mixBatch(b.x, b.shape, (await targets.data()) as Float32Array, K, mixRng, { mixupAlpha: o.mixup, cutmixAlpha: o.cutmix });
        targets.dispose();
        targets = tf.tensor2d(mixed, [n, K]);
      }
      const x = tf.tensor4d(b.x, b.shape);
      const dropSeed = ctx.seed * 100003 + r.step * 31 + micro;
      let argmax: tf.Tensor | null = null;
      const { value, grads } = tf.variableGrads(() => {
        const logits = r.model.forward(x, { training: true, seed: dropSeed });
        // Kept and read after the step: no synchronous read inside (webgpu has none in Node).
        argmax = tf.keep(tf.argMax(logits, -1));
        return softCrossEntropy(logits, targets);
      }, [...r.params.values()]);
      const pred = await argmax!.data();
      for (let i = 0; i < n; i++) if (pred[i] === b.labels[i]) correct++;
      const lossVal = (await value.data())[0];
      tf.dispose([x, targets, value, argmax!]);
      if (!Number.isFinite(lossVal)) {
        tf.dispose(Object.values(grads));
        throw new ConvNeXtError(`loss became ${lossVal} at epoch ${epoch + 1}, step ${r.step + 1}: lower the learning rate (lr)`);
      }
      lossSum += lossVal * n;
      seen += n;
      // Accumulate the sum of micro-batch gradients; the step takes their mean.
      if (!acc) acc = new Map(Object.entries(grads).map(([k, g]) => [byTfName.get(k)!, g]));
      else {
        for (const [k, g] of Object.entries(grads)) {
          const name = byTfName.get(k)!;
          const sum = tf.add(acc.get(name)!, g);
          acc.get(name)!.dispose();
          g.dispose();
          acc.set(name, sum);
        }
      }
      micro++;
      if (micro === accum) {
        const lr = r.lrAt(r.step);
        const mean = accum > 1 ? new Map([...acc].map(([k, g]) => [k, tf.div(g, accum)])) : acc;
        r.opt.apply(mean, lr);
        if (mean !== acc) tf.dispose([...mean.values()]);
        tf.dispose([...acc.values()]);
        acc = null;
        micro = 0;
        r.step++;
        r.ema?.update(r.all);
        const secs = (Date.now() - te) / 1000;
        const ips = seen / Math.max(secs, 1e-3);
        const stepsLeft = (ctx.endEpoch - epoch) * ctx.stepsPerEpoch - (r.step - epoch * ctx.stepsPerEpoch);
        ctx.emit({
          type: 'step',
          epoch: epoch + 1,
          batch: bi,
          batches: nb,
          loss: lossSum / seen,
          acc: correct / seen,
          lr,
          imagesPerSec: ips,
          etaSec: (stepsLeft * o.batchSize * accum) / Math.max(ips, 1e-3),
        });
      }
    }
  } finally {
    if (acc) tf.dispose([...acc.values()]);
  }
  return { seen, lossSum, correct, trainSecs: (Date.now() - te) / 1000 };
}

/** Trains; returns the final report. */
export async function train(opts: TrainOptions): Promise<TrainReport> {
  const t0 = Date.now();
  validateTrainOptions(opts);
  const o = withTrainDefaults(opts);
  const seed = o.seed;
  const emit = o.onEvent ?? (() => undefined);
  // Links, FIFOs and loops the walk left out are named; files with other extensions are not images.
  const data = loadData(o, seed, (s) => {
    if (s.kind !== 'extension') emit({ type: 'skip', file: s.path, reason: s.reason });
  });
  const { classes } = data;
  const K = classes.length;

  // Model, optimizer, EMA
  const config = resolveConfig(o.arch, { numClasses: K, dropPathRate: o.dropPathRate });
  const model = await initialModel(config, o.init, seed, (progress) => emit({ type: 'load', progress }));
  const trainable = new Set(trainableNames(model, o.freeze));
  const all = model.getWeights();
  const params = new Map([...all].filter(([k]) => trainable.has(k)));
  const opt = new AdamW(params, paramGroups(model.parameterInfo(), o.layerDecay), { weightDecay: o.weightDecay });
  const ema = o.emaDecay ? new ModelEma(all, o.emaDecay) : null;

  const accum = o.accumSteps;
  const stepsPerEpoch = Math.ceil(batchCount(data.train.length, o.batchSize, true) / accum);
  const totalSteps = stepsPerEpoch * o.epochs;
  const warmupSteps = Math.round(o.warmupEpochs * stepsPerEpoch);
  const run: RunState = { model, params, all, opt, ema, step: 0, lrAt: (s) => cosineLr(s, { base: o.lr, min: o.minLr, totalSteps, warmupSteps }) };
  try {
    if (stepsPerEpoch === 0) throw new ConvNeXtError(`batchSize ${o.batchSize} x accumSteps ${accum} exceeds the ${data.train.length} training images`);
    fs.mkdirSync(o.out, { recursive: true });
    const logFile = path.join(o.out, 'log.jsonl');
    let startEpoch = 0;
    let history: EpochRecord[] = [];
    if (o.resume && fs.existsSync(path.join(o.out, CHECKPOINT_FILE))) {
      const meta = loadCheckpoint<EpochRecord>(o.out, model, opt, ema);
      if (meta.classes.join('\u0000') !== classes.join('\u0000'))
        throw new ConvNeXtError(`resume: the checkpoint's classes (${meta.classes.join(', ')}) differ from the dataset's`);
      startEpoch = meta.epoch;
      run.step = meta.step;
      history = meta.history;
      truncateLog(logFile, startEpoch);
    } else if (o.resume) {
      throw new ConvNeXtError(`resume: no ${CHECKPOINT_FILE} in ${o.out}`);
    } else if (fs.existsSync(logFile)) {
      fs.rmSync(logFile);
    }
    emit({
      type: 'start',
      epochs: o.epochs,
      stepsPerEpoch,
      trainImages: data.train.length,
      valImages: data.val.length,
      classes,
      resumedFromEpoch: startEpoch,
      params: model.numParams(),
      trainable: [...params.values()].reduce((a, v) => a + v.size, 0),
    });

    const pre = evalPreprocessing(o.imageSize);
    const onSkip = (file: string, e: Error) => emit({ type: 'skip', file, reason: e.message });
    const endEpoch = Math.min(o.epochs, startEpoch + (o.stopAfterEpochs ?? o.epochs));
    const evalOpts = { imageSize: o.imageSize, batchSize: o.batchSize, preprocessing: pre };
    const validate = async (withEma: boolean, skip?: typeof onSkip): Promise<EvalMetrics | null> => {
      if (!data.val.length || (withEma && !ema)) return null;
      const run = () => evaluate(model, data.val, K, { ...evalOpts, onSkip: skip });
      return withEma ? withWeights(model, ema!.shadow, run) : run();
    };
    for (let epoch = startEpoch; epoch < endEpoch; epoch++) {
      const te = Date.now();
      const t = await trainEpoch(o, run, data.train, K, epoch, { seed, stepsPerEpoch, endEpoch, pre, emit, onSkip });
      const val = await validate(false, onSkip);
      const emaVal = await validate(true);
      const rec: EpochRecord = {
        epoch: epoch + 1,
        train_loss: t.lossSum / Math.max(t.seen, 1),
        train_acc: t.correct / Math.max(t.seen, 1),
        val_top1: val?.top1 ?? NaN,
        val_top5: val?.top5 ?? NaN,
        val_loss: val?.loss ?? NaN,
        ...(emaVal ? { ema_val_top1: emaVal.top1 } : {}),
        lr: run.lrAt(Math.max(0, run.step - 1)),
        images_per_s: t.seen / Math.max(t.trainSecs, 1e-3),
        seconds: (Date.now() - te) / 1000,
      };
      history.push(rec);
      // Checkpoint first, log line after: the log never runs ahead of what --resume can restore.
      await saveCheckpoint<EpochRecord>(o.out, model, opt, ema, { epoch: epoch + 1, step: run.step, classes, config: model.config, history });
      fs.appendFileSync(logFile, JSON.stringify(rec) + '\n');
      emit({ type: 'epoch', record: rec });
    }

    // Final model(s) as model directories, and the report.
    const meta: Omit<ModelMeta, 'formatVersion' | 'storage'> = {
      config: { ...model.config, dropPathRate: 0 },
      labels: classes,
      preprocessing: pre,
      source: { format: 'trained', arch: o.arch, init: o.init ?? null },
    };
    const modelDir = path.join(o.out, 'model');
    writeModelDir(modelDir, await readTensors(model.getWeights()), meta);
    if (ema) writeModelDir(path.join(o.out, 'model-ema'), await readTensors(ema.shadow), meta);
    const final = (await validate(false)) ?? { n: 0, top1: NaN, top5: NaN, loss: NaN, confusion: [] };
    const emaFinal = await validate(true);
    const report: TrainReport = {
      classes,
      epochs: o.epochs,
      final,
      ...(emaFinal ? { ema: emaFinal } : {}),
      history,
      modelDir,
      seconds: (Date.now() - t0) / 1000,
    };
    writeFileAtomic(path.join(o.out, 'report.json'), JSON.stringify(report, null, 1));
    return report;
  } finally {
    opt.dispose();
    ema?.dispose();
    model.dispose();
  }
}

function evalTransformOf(img: RgbImage, pre: PreprocessingInfo): Float32Array {
  // Already cropped and resized by the train transform: only scale and normalise.
  return normalizeImage(img, pre.mean, pre.std).data;
}

/** Runs fn with the model's weights temporarily replaced (EMA evaluation). */
async function withWeights<T>(model: ConvNeXt, weights: Map<string, tf.Variable>, fn: () => Promise<T>): Promise<T> {
  const saved = new Map([...model.getWeights()].map(([k, v]) => [k, v.clone()]));
  model.loadWeights(weights);
  try {
    return await fn();
  } finally {
    model.loadWeights(saved);
    tf.dispose([...saved.values()]);
  }
}
