/**
 * Fine-tuning / training on an image folder, the timm train script's essentials from TypeScript:
 * AdamW (no decay on norms, biases, layer scale, GRN), cosine schedule with linear warmup, layer-wise
 * lr decay, label smoothing, drop path, mixup/cutmix, EMA, gradient accumulation, freezing, head
 * re-initialised for a new class count. Seeded: the data order, augmentations and drop-path masks
 * derive from (seed, epoch, step), so a resumed run continues exactly as an uninterrupted one.
 *
 * Every epoch writes <out>/checkpoint.safetensors atomically (weights, AdamW moments, EMA, epoch,
 * step), appends a line to <out>/log.jsonl, and the end writes the final model in the converter's
 * format (<out>/model, and <out>/model-ema with EMA) plus <out>/report.json (top-1/top-5, confusion).
 * The library prints nothing: progress goes through `onEvent`.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import '../backend'; // op gradients and the wasm training kernels
import { ConvNeXtError } from '../errors';
import { RgbImage } from '../data/image';
import { evalTransform, normalizeImage } from '../data/transforms';
import { ModelMeta, PreprocessingInfo } from '../io/model_dir';
import { loadModel } from '../io/load';
import { ConvNeXtConfig, resolveConfig } from '../model/configs';
import { ConvNeXt } from '../model/convnext';
import { createRunner, pipeline, resolveWorkers } from '../inference/runner';
import { readSafetensors, writeSafetensors } from '../../weights-converter/safetensors';
import { modelWeights, writeModelDir } from '../../weights-converter/writer';
import { fcmaeFreshHead } from '../fcmae/finetune';
import { AdamW } from './adamw';
import { Rng, mixBatch, trainTransform } from './augment';
import { Sample, batchCount, batches, scanImageFolder, splitTrainVal } from './dataset';
import { ModelEma } from './ema';
import { paramGroups } from './layer_decay';
import { smoothOneHot, softCrossEntropy } from './loss';
import { EvalMetrics, MetricsAccumulator } from './metrics';
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
  freeze?: 'head' | number;
  mixup?: number;
  cutmix?: number;
  /** TrivialAugmentWide on training images (default true). */
  trivialAugment?: boolean;
  seed?: number;
  /** Batches decoded ahead (default 2). */
  prefetch?: number;
  /** Stop after this many epochs in this call (for tests of resume); the schedule still spans `epochs`. */
  stopAfterEpochs?: number;
  onEvent?: (e: TrainEvent) => void;
}

export type TrainEvent =
  | { type: 'start'; epochs: number; stepsPerEpoch: number; trainImages: number; valImages: number; classes: string[]; resumedFromEpoch: number; params: number; trainable: number }
  | { type: 'step'; epoch: number; batch: number; batches: number; loss: number; acc: number; lr: number; imagesPerSec: number; etaSec: number }
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

const CHECKPOINT = 'checkpoint.safetensors';

function evalPreprocessing(size: number): PreprocessingInfo {
  return { inputSize: size, cropPct: size >= 384 ? 1 : 0.875, cropMode: size >= 384 ? 'squash' : 'center', interpolation: 'bicubic', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
}

/** Loads initial weights from any source, as a model of `config` (drop path etc. from config). */
async function initialModel(config: ConvNeXtConfig, init: string | undefined, seed: number, numClasses: number): Promise<ConvNeXt> {
  if (!init) return new ConvNeXt({ ...config, numClasses }, seed);
  const loaded = await loadModel(init);
  const src = loaded.model;
  try {
    const c = src.config;
    if (c.version !== config.version || c.depths.join() !== config.depths.join() || c.dims.join() !== config.dims.join()) {
      throw new ConvNeXtError(`--init ${init} is V${c.version} depths [${c.depths}] dims [${c.dims}], not ${config.name}`);
    }
    const model = new ConvNeXt({ ...config, numClasses: src.numClasses, layerScaleInit: c.layerScaleInit, headNormEps: c.headNormEps }, seed, 'zeros');
    model.loadWeights(src.getWeights());
    if (src.numClasses !== numClasses) model.resetClassifier(numClasses); // new head for the new classes
    if (src.numClasses === 0 && numClasses > 0) fcmaeFreshHead(model, seed); // FCMAE encoder: FB2's head init, std 2e-5
    return model;
  } finally {
    src.dispose();
  }
}

function trainableNames(model: ConvNeXt, freeze: TrainOptions['freeze']): string[] {
  const names = model.parameterNames();
  if (freeze === undefined) return names;
  if (freeze === 'head') return names.filter((n) => n.startsWith('head.'));
  if (!(Number.isInteger(freeze) && freeze >= 0 && freeze <= 4)) throw new ConvNeXtError(`freeze must be 'head' or a stage count 0-4, got ${freeze}`);
  return names.filter((n) => !n.startsWith('stem.') && !Array.from({ length: freeze }, (_, i) => `stages.${i}.`).some((p) => n.startsWith(p)));
}

/** Evaluates a model on samples with the eval transform. */
export interface EvaluateOptions {
  imageSize: number;
  batchSize: number;
  preprocessing?: PreprocessingInfo;
  onSkip?: (file: string, e: Error) => void;
  /** Worker threads with replicas of the model (see Predictor's `workers`); default 1: this thread. */
  workers?: number | 'auto';
}

/** Top-1/top-5, loss and confusion matrix of `model` on labelled images (eval transform, no augmentation). */
export async function evaluate(model: ConvNeXt, samples: Sample[], numClasses: number, o: EvaluateOptions): Promise<EvalMetrics> {
  const pre = o.preprocessing ?? evalPreprocessing(o.imageSize);
  const acc = new MetricsAccumulator(numClasses);
  const runner = await createRunner(model, resolveWorkers(o.workers ?? 1, samples.length, o.batchSize));
  try {
    const it = batches(samples, { batchSize: o.batchSize, size: pre.inputSize, transform: (img: RgbImage) => evalTransform(img, pre).data, shuffle: false, seed: 'eval', onSkip: o.onSkip })[Symbol.asyncIterator]();
    await pipeline(
      runner.concurrency,
      async () => {
        const r = await it.next();
        return r.done ? undefined : r.value;
      },
      (b) => runner.run('logits', b.x, b.shape),
      (b, logits) => {
        const l = tf.tidy(() => softCrossEntropy(tf.tensor2d(logits, [b.labels.length, numClasses]), smoothOneHot(b.labels, numClasses, 0)));
        const loss = l.dataSync()[0];
        l.dispose();
        acc.add(logits, b.labels, loss);
      },
    );
  } finally {
    await runner.dispose();
  }
  return acc.result();
}

function saveCheckpoint(out: string, model: ConvNeXt, opt: AdamW, ema: ModelEma | null, meta: Record<string, unknown>): void {
  const t = new Map<string, { shape: number[]; data: Float32Array }>();
  const put = (prefix: string, vars: Map<string, tf.Variable>) => {
    for (const [k, v] of vars) t.set(`${prefix}${k}`, { shape: [...v.shape], data: v.dataSync() as Float32Array });
  };
  put('model.', model.getWeights());
  const st = opt.state();
  put('opt.m.', st.m);
  put('opt.v.', st.v);
  if (ema) put('ema.', ema.shadow);
  writeSafetensors(path.join(out, CHECKPOINT), t, { convnext_train: JSON.stringify({ ...meta, optStep: st.step }) });
}

interface CheckpointMeta {
  epoch: number;
  step: number;
  optStep: number;
  classes: string[];
  config: ConvNeXtConfig;
  history: EpochRecord[];
}

function loadCheckpoint(out: string, model: ConvNeXt, opt: AdamW, ema: ModelEma | null): CheckpointMeta {
  const file = path.join(out, CHECKPOINT);
  const { tensors, metadata } = readSafetensors(file);
  const meta = JSON.parse(metadata.convnext_train ?? 'null') as CheckpointMeta | null;
  if (!meta) throw new ConvNeXtError(`${file}: not a convnext-tfjs training checkpoint`);
  const group = (prefix: string) => {
    const m = new Map<string, tf.Tensor>();
    for (const [k, v] of tensors) if (k.startsWith(prefix)) m.set(k.slice(prefix.length), tf.tensor(v.data as Float32Array, v.shape));
    return m;
  };
  const w = group('model.');
  const m = group('opt.m.');
  const v = group('opt.v.');
  const e = group('ema.');
  try {
    model.loadWeights(w);
    opt.loadState(meta.optStep, m, v);
    if (ema) {
      if (e.size === 0) throw new ConvNeXtError(`${file}: has no EMA weights but EMA is on`);
      for (const [k, t] of e) ema.shadow.get(k)?.assign(t);
    }
  } finally {
    tf.dispose([...w.values(), ...m.values(), ...v.values(), ...e.values()]);
  }
  return meta;
}

function appendJsonl(file: string, rec: unknown): void {
  fs.appendFileSync(file, JSON.stringify(rec) + '\n');
}

/** Trains; returns the final report. */
export async function train(o: TrainOptions): Promise<TrainReport> {
  const t0 = Date.now();
  const seed = o.seed ?? 0;
  const emit = o.onEvent ?? (() => undefined);
  for (const [k, v] of [['epochs', o.epochs], ['imageSize', o.imageSize], ['batchSize', o.batchSize]] as const) {
    if (!(Number.isInteger(v) && v > 0)) throw new ConvNeXtError(`${k} must be a positive integer, got ${v}`);
  }
  if (!(o.lr > 0)) throw new ConvNeXtError(`lr must be > 0, got ${o.lr}`);
  if (o.imageSize < 32) throw new ConvNeXtError(`imageSize must be at least 32, got ${o.imageSize}`);
  if (o.val && o.valSplit) throw new ConvNeXtError('use either a val folder or valSplit, not both');

  // Data
  let trainSet = scanImageFolder(o.data);
  let valSamples: Sample[] = [];
  if (o.val) valSamples = scanImageFolder(o.val, trainSet.classes).samples;
  else if (o.valSplit) {
    const s = splitTrainVal(trainSet, o.valSplit, seed);
    trainSet = s.train;
    valSamples = s.val.samples;
  }
  const classes = trainSet.classes;
  const K = classes.length;

  // Model, optimizer, EMA
  const config = resolveConfig(o.arch, { numClasses: K, dropPathRate: o.dropPathRate ?? 0.1 });
  const model = await initialModel(config, o.init, seed, K);
  const trainable = new Set(trainableNames(model, o.freeze));
  const all = model.getWeights();
  const params = new Map([...all].filter(([k]) => trainable.has(k)));
  const opt = new AdamW(params, paramGroups(model.parameterInfo(), o.layerDecay ?? 1), { weightDecay: o.weightDecay ?? 0.05 });
  const ema = o.emaDecay ? new ModelEma(all, o.emaDecay) : null;
  const byTfName = new Map([...params].map(([k, v]) => [v.name, k]));

  fs.mkdirSync(o.out, { recursive: true });
  const logFile = path.join(o.out, 'log.jsonl');
  let startEpoch = 0;
  let step = 0;
  let history: EpochRecord[] = [];
  if (o.resume && fs.existsSync(path.join(o.out, CHECKPOINT))) {
    const meta = loadCheckpoint(o.out, model, opt, ema);
    if (meta.classes.join('\u0000') !== classes.join('\u0000')) throw new ConvNeXtError(`--resume: the checkpoint's classes (${meta.classes.join(', ')}) differ from the dataset's`);
    startEpoch = meta.epoch;
    step = meta.step;
    history = meta.history;
  } else if (o.resume) {
    throw new ConvNeXtError(`--resume: no ${CHECKPOINT} in ${o.out}`);
  } else if (fs.existsSync(logFile)) {
    fs.rmSync(logFile);
  }

  const accum = o.accumSteps ?? 1;
  const stepsPerEpoch = Math.ceil(batchCount(trainSet.samples.length, o.batchSize, true) / accum);
  if (stepsPerEpoch === 0) throw new ConvNeXtError(`batch size ${o.batchSize} x accumulation ${accum} exceeds the ${trainSet.samples.length} training images`);
  const totalSteps = stepsPerEpoch * o.epochs;
  const warmupSteps = Math.round((o.warmupEpochs ?? 0) * stepsPerEpoch);
  const lrAt = (s: number) => cosineLr(s, { base: o.lr, min: o.minLr ?? 1e-6, totalSteps, warmupSteps });
  emit({ type: 'start', epochs: o.epochs, stepsPerEpoch, trainImages: trainSet.samples.length, valImages: valSamples.length, classes, resumedFromEpoch: startEpoch, params: model.numParams(), trainable: [...params.values()].reduce((a, v) => a + v.size, 0) });

  const pre = evalPreprocessing(o.imageSize);
  const onSkip = (file: string, e: Error) => emit({ type: 'skip', file, reason: e.message });
  const endEpoch = Math.min(o.epochs, startEpoch + (o.stopAfterEpochs ?? o.epochs));
  try {
    for (let epoch = startEpoch; epoch < endEpoch; epoch++) {
      const te = Date.now();
      let seen = 0;
      let lossSum = 0;
      let correct = 0;
      let micro = 0;
      let acc: Map<string, tf.Tensor> | null = null;
      const nb = stepsPerEpoch * accum;
      let bi = 0;
      const mixRng: Rng = seedrandom(`mix-${seed}-${epoch}`);
      for await (const b of batches(trainSet.samples, {
        batchSize: o.batchSize,
        size: o.imageSize,
        transform: (img, rng) => evalTransformOf(trainTransform(img, rng, { size: o.imageSize, trivialAugment: o.trivialAugment }), pre),
        shuffle: true,
        dropLast: true,
        seed: `${seed}-${epoch}`,
        prefetch: o.prefetch,
        onSkip,
      })) {
        if (bi >= nb) break;
        bi++;
        const n = b.labels.length;
        let targets = smoothOneHot(b.labels, K, o.labelSmoothing ?? 0.1);
        if ((o.mixup ?? 0) > 0 || (o.cutmix ?? 0) > 0) {
          const mixed = mixBatch(b.x, b.shape, targets.dataSync() as Float32Array, K, mixRng, { mixupAlpha: o.mixup, cutmixAlpha: o.cutmix });
          targets.dispose();
          targets = tf.tensor2d(mixed, [n, K]);
        }
        const x = tf.tensor4d(b.x, b.shape);
        const dropSeed = seed * 100003 + step * 31 + micro;
        const { value, grads } = tf.variableGrads(() => {
          const logits = model.forward(x, { training: true, seed: dropSeed });
          tf.tidy(() => {
            const pred = tf.argMax(logits, -1).dataSync();
            for (let i = 0; i < n; i++) if (pred[i] === b.labels[i]) correct++;
          });
          return softCrossEntropy(logits, targets);
        }, [...params.values()]);
        const lossVal = value.dataSync()[0];
        if (!Number.isFinite(lossVal)) throw new ConvNeXtError(`loss became ${lossVal} at epoch ${epoch + 1}, step ${step + 1}: lower --lr`);
        lossSum += lossVal * n;
        seen += n;
        tf.dispose([x, targets, value]);
        // Accumulate the mean of micro-batch gradients.
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
          const lr = lrAt(step);
          const mean = accum > 1 ? new Map([...acc].map(([k, g]) => [k, tf.div(g, accum)])) : acc;
          opt.apply(mean, lr);
          if (mean !== acc) tf.dispose([...mean.values()]);
          tf.dispose([...acc.values()]);
          acc = null;
          micro = 0;
          step++;
          ema?.update(all);
          const secs = (Date.now() - te) / 1000;
          const ips = seen / Math.max(secs, 1e-3);
          const stepsLeft = (endEpoch - epoch) * stepsPerEpoch - (step - epoch * stepsPerEpoch);
          emit({ type: 'step', epoch: epoch + 1, batch: bi, batches: nb, loss: lossSum / seen, acc: correct / seen, lr, imagesPerSec: ips, etaSec: (stepsLeft * o.batchSize * accum) / Math.max(ips, 1e-3) });
        }
      }
      if (acc) tf.dispose([...acc.values()]);
      const trainSecs = (Date.now() - te) / 1000;
      const val = valSamples.length ? await evaluate(model, valSamples, K, { imageSize: o.imageSize, batchSize: o.batchSize, preprocessing: pre, onSkip }) : null;
      let emaVal: EvalMetrics | null = null;
      if (ema && valSamples.length) emaVal = await withWeights(model, ema.shadow, () => evaluate(model, valSamples, K, { imageSize: o.imageSize, batchSize: o.batchSize, preprocessing: pre }));
      const secs = (Date.now() - te) / 1000;
      const rec: EpochRecord = {
        epoch: epoch + 1,
        train_loss: lossSum / Math.max(seen, 1),
        train_acc: correct / Math.max(seen, 1),
        val_top1: val?.top1 ?? NaN,
        val_top5: val?.top5 ?? NaN,
        val_loss: val?.loss ?? NaN,
        ...(emaVal ? { ema_val_top1: emaVal.top1 } : {}),
        lr: lrAt(Math.max(0, step - 1)),
        images_per_s: seen / Math.max(trainSecs, 1e-3),
        seconds: secs,
      };
      history.push(rec);
      appendJsonl(logFile, rec);
      saveCheckpoint(o.out, model, opt, ema, { epoch: epoch + 1, step, classes, config: model.config, history } as Record<string, unknown>);
      emit({ type: 'epoch', record: rec });
    }

    // Final model(s) in the converter's format, and the report.
    const meta: Omit<ModelMeta, 'formatVersion' | 'storage'> = { config: { ...model.config, dropPathRate: 0 }, labels: classes, preprocessing: pre, source: { format: 'trained', arch: o.arch, init: o.init ?? null } };
    const modelDir = path.join(o.out, 'model');
    writeModelDir(modelDir, modelWeights(model.getWeights()), meta);
    if (ema) writeModelDir(path.join(o.out, 'model-ema'), modelWeights(ema.shadow), meta);
    const final = valSamples.length ? await evaluate(model, valSamples, K, { imageSize: o.imageSize, batchSize: o.batchSize, preprocessing: pre }) : { n: 0, top1: NaN, top5: NaN, loss: NaN, confusion: [] };
    const emaFinal = ema && valSamples.length ? await withWeights(model, ema.shadow, () => evaluate(model, valSamples, K, { imageSize: o.imageSize, batchSize: o.batchSize, preprocessing: pre })) : undefined;
    const report: TrainReport = { classes, epochs: o.epochs, final, ...(emaFinal ? { ema: emaFinal } : {}), history, modelDir, seconds: (Date.now() - t0) / 1000 };
    const tmp = path.join(o.out, `.report.json.${process.pid}.tmp`);
    fs.writeFileSync(tmp, JSON.stringify(report, null, 1));
    fs.renameSync(tmp, path.join(o.out, 'report.json'));
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
