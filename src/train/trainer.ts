/**
 * Fine-tuning / training on an image folder, the timm train script's essentials from TypeScript:
 * AdamW (no decay on norms, biases, layer scale, GRN), cosine schedule with linear warmup, layer-wise
 * lr decay, label smoothing, drop path, mixup/cutmix, EMA, gradient accumulation, freezing, head
 * re-initialised for a new class count. Seeded: the data order, augmentations, mixup and drop-path
 * masks derive from (seed, epoch, step, sample), so a resumed run continues exactly as an
 * uninterrupted one, and the worker count does not change the result (data_parallel/: the steps
 * and their AdamW and EMA updates run on every core; the main thread keeps the schedule, evaluation
 * and checkpoints).
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
import '../backend'; // op gradients and the wasm training kernels
import { ConvNeXtError } from '../errors';
import { LoadProgress } from '../factory/load';
import { writeModelDir } from '../io/model_dir';
import { readTensors } from '../util/tensors';
import { resolveConfig } from '../model/configs';
import { ConvNeXt } from '../model/convnext';
import { ModelMeta } from '../model/meta';
import { evalPreprocessing } from '../model/preprocessing';
import { SkippedEntry, writeFileAtomic } from '../util/fs';
import { AdamW } from './adamw';
import { CHECKPOINT_FILE, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { ClassifyTask, ClassifyTaskOptions, CLASSIFY_TASK_MODULE } from './data_parallel/classify_task';
import { DataParallelEngine, createEngine } from './data_parallel/engine';
import { stepRef } from './data_parallel/task';
import { Sample, batchCount, scanImageFolder, splitTrainVal } from './dataset';
import { ModelEma } from './ema';
import { evaluate } from './evaluate';
import { Freeze, initialModel, trainableNames } from './init';
import { paramGroups } from './layer_decay';
import { EvalMetrics } from './metrics';
import { ResolvedTrainOptions, RunOptions, validateTrainOptions, withTrainDefaults } from './options';
import { cosineLr } from './schedule';

export interface TrainOptions extends RunOptions {
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
      /** Data-parallel replicas (1: this thread). */
      workers: number;
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

/** One epoch of training steps: each step's micro-batches go to the engine, one AdamW step follows. */
async function trainEpoch(
  o: ResolvedTrainOptions,
  r: RunState,
  engine: DataParallelEngine,
  epoch: number,
  ctx: { stepsPerEpoch: number; endEpoch: number; emit: (e: TrainEvent) => void },
): Promise<EpochTotals> {
  const te = Date.now();
  const accum = o.accumSteps;
  const spe = ctx.stepsPerEpoch;
  const refOf = (step: number) => stepRef(step, spe, accum);
  const endStep = ctx.endEpoch * spe;
  let seen = 0;
  let lossSum = 0;
  let correct = 0;
  for (let i = 0; i < spe; i++) {
    const ref = refOf(epoch * spe + i);
    const out = await engine.step(ref, ref.step + 1 < endStep ? refOf(ref.step + 1) : null);
    const lr = r.lrAt(r.step);
    const lossVal = out.lossSum / out.n;
    if (out.n > 0 && !Number.isFinite(lossVal))
      throw new ConvNeXtError(`loss became ${lossVal} at epoch ${epoch + 1}, step ${r.step + 1}: lower the learning rate (lr)`);
    // AdamW, then the EMA. A step whose images all failed to decode moves the schedule (and the EMA)
    // on without an optimizer update.
    await engine.update(lr);
    lossSum += out.lossSum;
    seen += out.n;
    correct += out.correct;
    r.step++;
    const secs = (Date.now() - te) / 1000;
    const ips = seen / Math.max(secs, 1e-3);
    const stepsLeft = (ctx.endEpoch - epoch) * spe - (i + 1);
    ctx.emit({
      type: 'step',
      epoch: epoch + 1,
      batch: (i + 1) * accum,
      batches: spe * accum,
      loss: lossSum / Math.max(seen, 1),
      acc: correct / Math.max(seen, 1),
      lr,
      imagesPerSec: ips,
      etaSec: (stepsLeft * o.batchSize * accum) / Math.max(ips, 1e-3),
    });
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
  let engine: DataParallelEngine | null = null;
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

    const pre = evalPreprocessing(o.imageSize);
    const onSkip = (file: string, e: Error) => emit({ type: 'skip', file, reason: e.message });
    const task: ClassifyTaskOptions = {
      config: { ...model.config, depths: [...model.config.depths], dims: [...model.config.dims] },
      samples: data.train,
      batchSize: o.batchSize,
      seed,
      transform: { size: o.imageSize, autoAugment: o.autoAugment, scale: o.scale, ratio: o.ratio },
      mean: [...pre.mean],
      std: [...pre.std],
      labelSmoothing: o.labelSmoothing,
      mixup: o.mixup,
      cutmix: o.cutmix,
      trainable: [...params.keys()],
      chunkSize: o.chunkSize,
    };
    const onTaskSkip = (file: string, reason: string) => emit({ type: 'skip', file, reason });
    // After a resume: the replicas start from the restored weights.
    engine = await createEngine({
      workers: o.workers ?? 'auto',
      batchSize: o.batchSize,
      variables: all,
      trainable: task.trainable,
      optimizer: opt,
      ema,
      taskModule: CLASSIFY_TASK_MODULE,
      taskOptions: task,
      inProcess: () => new ClassifyTask(model, task, onTaskSkip),
      onSkip: onTaskSkip,
    });
    emit({
      type: 'start',
      epochs: o.epochs,
      stepsPerEpoch,
      trainImages: data.train.length,
      valImages: data.val.length,
      classes,
      resumedFromEpoch: startEpoch,
      workers: engine.workers,
      params: model.numParams(),
      trainable: [...params.values()].reduce((a, v) => a + v.size, 0),
    });
    const endEpoch = Math.min(o.epochs, startEpoch + (o.stopAfterEpochs ?? o.epochs));
    const evalOpts = { imageSize: o.imageSize, batchSize: o.batchSize, preprocessing: pre };
    const validate = async (withEma: boolean, skip?: typeof onSkip): Promise<EvalMetrics | null> => {
      if (!data.val.length || (withEma && !ema)) return null;
      const run = () => evaluate(model, data.val, K, { ...evalOpts, onSkip: skip });
      return withEma ? withWeights(model, ema!.shadow, run) : run();
    };
    for (let epoch = startEpoch; epoch < endEpoch; epoch++) {
      const te = Date.now();
      const t = await trainEpoch(o, run, engine, epoch, { stepsPerEpoch, endEpoch, emit });
      await engine.sync(); // the master weights, moments and EMA, for validation and the checkpoint
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
    await engine?.dispose();
    opt.dispose();
    ema?.dispose();
    model.dispose();
  }
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
