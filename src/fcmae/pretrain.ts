/**
 * FCMAE pretraining loop (FB2 main_pretrain.py / engine_pretrain.py), library first:
 *   data      every image under `data` (recursive, labels ignored); RandomResizedCrop(size, scale
 *             (0.2, 1), bicubic) + horizontal flip, ImageNet normalisation; drop_last
 *   optimizer AdamW betas (0.9, 0.95), eps 1e-8, wd 0.05 with the pretraining decay groups
 *             (Fcmae.paramGroups: GRN and mask_token decayed), lr = blr x eff_batch / 256
 *   schedule  per optimizer step: linear warmup over warmupEpochs, half-cosine to minLr (0)
 *   accum     the mean loss over the accum micro-batches of a step, one step every accum micro-batches
 *   masks     a fresh seeded random mask per image (seed, epoch, batch, position in the batch)
 *   workers   the steps run data-parallel on every core (src/train/data_parallel; parallel_task.ts)
 * Seeded throughout (data order, augmentation, masks), so `resume` continues bit-identically.
 *
 * <out>/checkpoint.safetensors each epoch (atomic: encoder, decoder, mask token, AdamW moments,
 * step), then a line of <out>/log.jsonl; <out>/reconstruction-eNNN.png every `reconstructEvery`
 * epochs; at the end <out>/encoder (a numClasses-0 model directory for predict / embed / train
 * --init) and <out>/fcmae.pth (the full model in FB2's checkpoint layout: Minkowski names).
 * The library prints nothing: progress goes through `onEvent`.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import '../backend'; // op gradients and the wasm training kernels
import { decodeImage } from '../data/decode';
import { evalResizeCrop, normalizeImage } from '../data/transforms';
import { IMAGENET_MEAN, IMAGENET_STD } from '../model/preprocessing';
import { IMAGE_EXTENSIONS } from '../data/decode';
import { PreprocessingInfo } from '../model/preprocessing';
import { ConvNeXtConfig, resolveConfig } from '../model/configs';
import { AdamW } from '../train/adamw';
import { Sample, batchCount } from '../train/dataset';
import { DataParallelEngine, createEngine } from '../train/data_parallel/engine';
import { stepRef } from '../train/data_parallel/task';
import { CHUNK_SIZE_RULE, ChunkSize, isChunkSize } from '../train/data_parallel/chunks';
import { FCMAE_TASK_MODULE, FcmaeTask, FcmaeTaskOptions } from './parallel_task';
import { cosineLr } from '../train/schedule';
import { RunOptions } from '../train/options';
import { writeFileAtomic } from '../util/fs';
import { writeModelDir } from '../io/model_dir';
import { readTensors } from '../util/tensors';
import { FcmaeError } from '../errors';
import { Fcmae } from './fcmae';
import { FcmaeInit } from './init';
import { GrnStats } from './masked_grn';
import { FCMAE_PATCH, PatchMask, randomMask } from './mask';
import { reconstructionGrid } from './visualize';
import { encodePng } from '../data/png';
import { writeFcmaeCheckpoint } from './torch_writer';
import { listFiles } from '../util/fs';
import { readCheckpointFile, writeCheckpointFile } from '../train/checkpoint';
import { builtOrDisposed } from '../util/dispose';

/**
 * Options of pretrain(). Of the RunOptions, `workers` is 1 and `chunkSize` 'auto' means no chunks with grnStats 'batch',
 * whose statistics pool over the whole batch (an explicit N > 1 workers, or a chunkSize number, is refused).
 */
export interface PretrainOptions extends RunOptions {
  /** Folder of images (searched recursively; subfolders and labels are ignored). */
  data: string;
  /** A ConvNeXt V2 registry name (convnextv2_atto ...) or a custom V2 config. */
  arch: Parameters<typeof resolveConfig>[0];
  out: string;
  epochs: number;
  /** Images per micro-batch. */
  batchSize: number;
  /** Input side (224), divisible by 32. */
  imageSize?: number;
  maskRatio?: number;
  decoderDim?: number;
  decoderDepth?: number;
  grnStats?: GrnStats;
  /** Base lr (1.5e-4); the lr is blr x batchSize x accum / 256. */
  blr?: number;
  /** Absolute lr instead of blr scaling. */
  lr?: number;
  minLr?: number;
  /** Warmup epochs (40 in the official recipe; clamped to the run). */
  warmupEpochs?: number;
  weightDecay?: number;
  /** Micro-batches per optimizer step (update_freq). */
  accum?: number;
  /** Each image appears this many times per epoch, each with its own crop (small data sets). */
  repeats?: number;
  init?: FcmaeInit;
  seed?: number;
  /** A reconstruction grid every this many epochs (0: never); default 1. */
  reconstructEvery?: number;
  /** Images in the grid (evenly spaced in file order, centre-cropped; default 4). */
  reconstructImages?: number;
  onEvent?: (e: PretrainEvent) => void;
}

export type PretrainEvent =
  | { type: 'start'; epochs: number; stepsPerEpoch: number; images: number; resumedFromEpoch: number; workers: number; params: number; lr: number }
  | { type: 'step'; epoch: number; batch: number; batches: number; loss: number; lr: number; imagesPerSec: number }
  | { type: 'skip'; file: string; reason: string }
  | { type: 'picture'; file: string }
  | { type: 'epoch'; record: PretrainRecord };

export interface PretrainRecord {
  epoch: number;
  step: number;
  loss: number;
  lr: number;
  images_per_s: number;
  seconds: number;
}

export interface PretrainReport {
  history: PretrainRecord[];
  encoderDir: string;
  checkpoint: string;
  seconds: number;
}

const CHECKPOINT = 'checkpoint.safetensors';

/** Every image file under `root`, sorted, as unlabeled samples. */
export function listImagesRecursive(root: string): Sample[] {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new FcmaeError(`data ${root}: not a directory`);
  const out = listFiles(root, IMAGE_EXTENSIONS);
  if (out.length === 0) throw new FcmaeError(`data ${root}: no images found (${IMAGE_EXTENSIONS.join(' ')})`);
  return out.map((file) => ({ file, label: 0, key: path.relative(root, file) }));
}

export function pretrainPreprocessing(size: number): PreprocessingInfo {
  return { inputSize: size, cropPct: 0.875, cropMode: 'center', interpolation: 'bicubic', mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] };
}

interface CheckpointMeta {
  epoch: number;
  step: number;
  optStep: number;
  config: ConvNeXtConfig;
  decoderDim: number;
  decoderDepth: number;
  history: PretrainRecord[];
}

async function saveCheckpoint(out: string, f: Fcmae, opt: AdamW, meta: Omit<CheckpointMeta, 'optStep'>): Promise<void> {
  const st = opt.state();
  await writeCheckpointFile(path.join(out, CHECKPOINT), { 'model.': f.parameters(), 'opt.m.': st.m, 'opt.v.': st.v }, 'convnext_fcmae', {
    ...meta,
    optStep: st.step,
  });
}

/** Reads a pretraining checkpoint's metadata and tensors (by prefix: model., opt.m., opt.v.). */
export function readPretrainCheckpoint(file: string): { meta: CheckpointMeta; groups: (prefix: string) => Map<string, tf.Tensor> } {
  const { meta, group } = readCheckpointFile<CheckpointMeta>(file, 'convnext_fcmae', 'FCMAE pretraining');
  return { meta, groups: group };
}

function assignAll(target: Map<string, tf.Variable>, values: Map<string, tf.Tensor>, what: string): void {
  const missing = [...target.keys()].filter((k) => !values.has(k));
  if (missing.length) throw new FcmaeError(`${what}: missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` (+${missing.length - 5})` : ''}`);
  for (const [k, v] of target) {
    const t = values.get(k)!;
    if (!tf.util.arraysEqual(t.shape, v.shape)) throw new FcmaeError(`${what}: ${k} is [${t.shape}], the model has [${v.shape}]`);
    v.assign(t);
  }
}

/** Builds an Fcmae from a pretraining run directory or checkpoint.safetensors. */
export function fcmaeFromRun(source: string, opts: { grnStats?: GrnStats; maskRatio?: number } = {}): Fcmae {
  const file = fs.statSync(source).isDirectory() ? path.join(source, CHECKPOINT) : source;
  const { meta, groups } = readPretrainCheckpoint(file);
  const f = new Fcmae(meta.config, { decoderDim: meta.decoderDim, decoderDepth: meta.decoderDepth, init: 'zeros', ...opts });
  const w = groups('model.');
  try {
    return builtOrDisposed(f, () => assignAll(f.parameters(), w, file));
  } finally {
    tf.dispose([...w.values()]);
  }
}

async function fixedImages(samples: Sample[], k: number, size: number): Promise<tf.Tensor4D> {
  const per = size * size * 3;
  const data: Float32Array[] = [];
  // spread over the (sorted) list, so that the grid is not k crops of one folder
  const step = Math.max(1, Math.floor(samples.length / k));
  const picks = samples.filter((_, i) => i % step === 0);
  for (const s of picks) {
    if (data.length >= k) break;
    try {
      data.push(normalizeImage(evalResizeCrop(await decodeImage(s.file), { inputSize: size, cropPct: 1 })).data);
    } catch {
      // an undecodable image is reported by the training loader; the grid just skips it
    }
  }
  const x = new Float32Array(data.length * per);
  data.forEach((d, i) => x.set(d, i * per));
  return tf.tensor4d(x, [data.length, size, size, 3]);
}

/**
 * The worker count of a run: 'auto' unless GRN statistics pool over the batch ('batch'), which a
 * split batch would change; then one, and an explicit count above one is refused.
 */
function pretrainWorkers(workers: number | 'auto' | undefined, grnStats: GrnStats): number | 'auto' {
  if (grnStats !== 'batch') return workers ?? 'auto';
  if (workers !== undefined && workers !== 'auto' && workers > 1)
    throw new FcmaeError(
      `workers ${workers}: grnStats 'batch' pools GRN statistics over the whole batch, which workers would split; use workers 1 or grnStats 'image'`,
    );
  return 1;
}

/** chunkSize checked; grnStats 'batch' pools over the whole batch, which chunks would split: a number is refused, 'auto' means none. */
function pretrainChunkSize(chunkSize: ChunkSize | undefined, grnStats: GrnStats): ChunkSize | undefined {
  if (chunkSize === undefined) return undefined;
  if (!isChunkSize(chunkSize)) throw new FcmaeError(`chunkSize must be ${CHUNK_SIZE_RULE}, got ${JSON.stringify(chunkSize)}`);
  if (grnStats === 'batch' && chunkSize !== 'auto')
    throw new FcmaeError(
      `chunkSize ${chunkSize}: grnStats 'batch' pools GRN statistics over the whole batch, which chunks would split; use chunkSize 'auto' (no chunks then) or grnStats 'image'`,
    );
  return chunkSize;
}

/** Pretrains; returns the history and where the results are. */
export async function pretrain(o: PretrainOptions): Promise<PretrainReport> {
  const t0 = Date.now();
  const seed = o.seed ?? 0;
  const emit = o.onEvent ?? (() => undefined);
  const size = o.imageSize ?? 224;
  const accum = o.accum ?? 1;
  const repeats = o.repeats ?? 1;
  for (const [k, v] of [
    ['epochs', o.epochs],
    ['batchSize', o.batchSize],
    ['accum', accum],
    ['repeats', repeats],
    ['imageSize', size],
  ] as const) {
    if (!(Number.isInteger(v) && v > 0)) throw new FcmaeError(`${k} must be a positive integer, got ${v}`);
  }
  const chunkSize = pretrainChunkSize(o.chunkSize, o.grnStats ?? 'image');
  if (size % FCMAE_PATCH !== 0) throw new FcmaeError(`imageSize must be divisible by ${FCMAE_PATCH} (the patch size), got ${size}`);
  const images = listImagesRecursive(o.data);
  const samples: Sample[] = [];
  for (let r = 0; r < repeats; r++) for (const s of images) samples.push({ ...s, key: `${s.key}#${r}` });
  const stepsPerEpoch = Math.floor(batchCount(samples.length, o.batchSize, true) / accum);
  if (stepsPerEpoch === 0)
    throw new FcmaeError(`batch size ${o.batchSize} x accum ${accum} exceeds the ${samples.length} images of an epoch (${images.length} x repeats ${repeats})`);
  const lr = o.lr ?? ((o.blr ?? 1.5e-4) * o.batchSize * accum) / 256;
  const totalSteps = stepsPerEpoch * o.epochs;
  const warmupSteps = Math.min(totalSteps, Math.round((o.warmupEpochs ?? 40) * stepsPerEpoch));
  const lrAt = (s: number) => cosineLr(s, { base: lr, min: o.minLr ?? 0, totalSteps, warmupSteps });

  const f = new Fcmae(o.arch, { decoderDim: o.decoderDim, decoderDepth: o.decoderDepth, maskRatio: o.maskRatio, grnStats: o.grnStats, init: o.init, seed });
  const params = f.parameters();
  const opt = new AdamW(params, f.paramGroups(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: o.weightDecay ?? 0.05 });
  let fixed: tf.Tensor4D | null = null;
  let engine: DataParallelEngine | null = null;
  try {
    fs.mkdirSync(o.out, { recursive: true });
    const logFile = path.join(o.out, 'log.jsonl');
    let startEpoch = 0;
    let step = 0;
    let history: PretrainRecord[] = [];
    const ckptFile = path.join(o.out, CHECKPOINT);
    if (o.resume) {
      if (!fs.existsSync(ckptFile)) throw new FcmaeError(`--resume: no ${CHECKPOINT} in ${o.out}`);
      const { meta, groups } = readPretrainCheckpoint(ckptFile);
      const c = f.encoderModel.config;
      if (
        meta.config.depths.join() !== c.depths.join() ||
        meta.config.dims.join() !== c.dims.join() ||
        meta.decoderDim !== f.decoder.options.dim ||
        meta.decoderDepth !== f.decoder.options.depth
      ) {
        throw new FcmaeError(
          `--resume: the checkpoint is ${meta.config.name} [${meta.config.depths}] [${meta.config.dims}] with decoder ${meta.decoderDim}x${meta.decoderDepth}, ` +
            `not ${c.name} [${c.depths}] [${c.dims}] with ${f.decoder.options.dim}x${f.decoder.options.depth}`,
        );
      }
      const [w, m, v] = [groups('model.'), groups('opt.m.'), groups('opt.v.')];
      try {
        assignAll(params, w, ckptFile);
        opt.loadState(meta.optStep, m, v);
      } finally {
        tf.dispose([...w.values(), ...m.values(), ...v.values()]);
      }
      startEpoch = meta.epoch;
      step = meta.step;
      history = meta.history;
    } else if (fs.existsSync(logFile)) fs.rmSync(logFile);

    const every = o.reconstructEvery ?? 1;
    if (every > 0) fixed = await fixedImages(images, o.reconstructImages ?? 4, size);
    const fixedMask: PatchMask | null = fixed ? randomMask(fixed.shape[0], (size / FCMAE_PATCH) ** 2, f.maskRatio, `recon-${seed}`) : null;
    const endEpoch = Math.min(o.epochs, startEpoch + (o.stopAfterEpochs ?? o.epochs));

    const task: FcmaeTaskOptions = {
      config: { ...f.encoderModel.config, depths: [...f.encoderModel.config.depths], dims: [...f.encoderModel.config.dims] },
      decoderDim: f.decoder.options.dim,
      decoderDepth: f.decoder.options.depth,
      maskRatio: f.maskRatio,
      grnStats: f.grnStats,
      samples,
      batchSize: o.batchSize,
      imageSize: size,
      seed,
      chunkSize,
    };
    const onTaskSkip = (file: string, reason: string) => emit({ type: 'skip', file, reason });
    // After a resume: the replicas start from the restored weights.
    engine = await createEngine({
      workers: pretrainWorkers(o.workers, f.grnStats),
      batchSize: o.batchSize,
      variables: params,
      trainable: [...params.keys()],
      optimizer: opt,
      taskModule: FCMAE_TASK_MODULE,
      taskOptions: task,
      inProcess: () => new FcmaeTask(f, task, onTaskSkip),
      onSkip: onTaskSkip,
    });
    emit({
      type: 'start',
      epochs: o.epochs,
      stepsPerEpoch,
      images: images.length,
      resumedFromEpoch: startEpoch,
      workers: engine.workers,
      params: [...params.values()].reduce((a, v) => a + v.size, 0),
      lr,
    });
    const refOf = (s: number) => stepRef(s, stepsPerEpoch, accum);
    const endStep = endEpoch * stepsPerEpoch;

    for (let epoch = startEpoch; epoch < endEpoch; epoch++) {
      const te = Date.now();
      let seen = 0;
      let lossSum = 0;
      const nb = stepsPerEpoch * accum;
      for (let i = 0; i < stepsPerEpoch; i++) {
        const ref = refOf(epoch * stepsPerEpoch + i);
        const out = await engine.step(ref, ref.step + 1 < endStep ? refOf(ref.step + 1) : null);
        const lrNow = lrAt(step);
        const lossVal = out.lossSum / out.n;
        if (out.n > 0 && !Number.isFinite(lossVal))
          throw new FcmaeError(`loss became ${lossVal} at epoch ${epoch + 1}, step ${step + 1}: lower --blr (or use --init convnext)`);
        await engine.update(lrNow);
        lossSum += out.lossSum;
        seen += out.n;
        step++;
        emit({
          type: 'step',
          epoch: epoch + 1,
          batch: (i + 1) * accum,
          batches: nb,
          loss: lossSum / Math.max(seen, 1),
          lr: lrNow,
          imagesPerSec: seen / Math.max((Date.now() - te) / 1000, 1e-3),
        });
      }
      const secs = (Date.now() - te) / 1000;
      await engine.sync(); // the master weights and moments, for the checkpoint and the pictures
      const rec: PretrainRecord = {
        epoch: epoch + 1,
        step,
        loss: lossSum / Math.max(seen, 1),
        lr: lrAt(Math.max(0, step - 1)),
        images_per_s: seen / Math.max(secs, 1e-3),
        seconds: secs,
      };
      history.push(rec);
      // checkpoint first, then the log line: a log line always has its checkpoint
      await saveCheckpoint(o.out, f, opt, {
        epoch: epoch + 1,
        step,
        config: f.encoderModel.config,
        decoderDim: f.decoder.options.dim,
        decoderDepth: f.decoder.options.depth,
        history,
      });
      fs.appendFileSync(logFile, JSON.stringify(rec) + '\n');
      if (fixed && fixedMask && fixed.shape[0] > 0 && ((epoch + 1) % every === 0 || epoch + 1 === o.epochs)) {
        const file = path.join(o.out, `reconstruction-e${String(epoch + 1).padStart(3, '0')}.png`);
        const out = f.forward(fixed, fixedMask);
        try {
          writeFileAtomic(file, encodePng(reconstructionGrid(fixed, out.pred, fixedMask, f.normPixLoss)));
        } finally {
          tf.dispose([out.loss, out.pred, out.latent]);
        }
        emit({ type: 'picture', file });
      }
      emit({ type: 'epoch', record: rec });
    }

    const encoderDir = path.join(o.out, 'encoder');
    const fcmaePth = path.join(o.out, 'fcmae.pth');
    if (endEpoch === o.epochs) {
      const cfg = { ...f.encoderModel.config, numClasses: 0, dropPathRate: 0 };
      writeModelDir(encoderDir, await readTensors(f.encoderModel.getWeights()), {
        config: cfg,
        preprocessing: pretrainPreprocessing(size),
        source: { format: 'fcmae-pretrained', arch: f.encoderModel.config.name, init: null },
      });
      await writeFcmaeCheckpoint(fcmaePth, f, {
        epoch: o.epochs,
        args: {
          model: f.encoderModel.config.name,
          input_size: size,
          mask_ratio: f.maskRatio,
          decoder_embed_dim: f.decoder.options.dim,
          decoder_depth: f.decoder.options.depth,
          norm_pix_loss: f.normPixLoss,
          blr: o.blr ?? 1.5e-4,
          lr,
          batch_size: o.batchSize,
          update_freq: accum,
          epochs: o.epochs,
          warmup_epochs: o.warmupEpochs ?? 40,
          weight_decay: o.weightDecay ?? 0.05,
          seed,
        },
      });
    }
    return { history, encoderDir, checkpoint: fcmaePth, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await engine?.dispose();
    fixed?.dispose();
    opt.dispose();
    f.dispose();
  }
}
