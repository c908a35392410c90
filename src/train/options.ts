/**
 * Training options: their defaults (the ConvNeXt recipe, Liu et al. 2022, appendix A.1, scaled
 * to the batch size) and one validation pass that runs before any work, so that a bad value is a
 * one-line error naming the option instead of a crash (or a silently odd run) later on.
 *
 *   const o = withTrainDefaults({ data: 'photos/train', arch: 'convnext_atto', epochs: 10 });
 *   validateTrainOptions(o);          // throws TrainOptionError: "labelSmoothing must be in [0, 1), got -1"
 *
 * The trainer calls validateTrainOptions at its start; the CLI calls it before loading anything and
 * maps the option names to its flags (labelSmoothing -> --smoothing).
 */
import * as fs from 'fs';
import * as path from 'path';
import { TrainOptionError } from '../errors';
import { MAX_INPUT_SIZE, MIN_INPUT_SIZE } from '../model/preprocessing';
import { RRC_RATIO, RRC_SCALE } from './augment';
import { DEFAULT_AUTO_AUGMENT, parseAutoAugment, resolveAutoAugment } from './rand_augment';
import type { TrainOptions } from './trainer';
import { CHUNK_SIZE_RULE, ChunkSize, isChunkSize } from './data_parallel/chunks';

/**
 * Every training default, in one place: the trainer applies them (withTrainDefaults) and the CLI
 * shows them in --help. lr and out have computed defaults (recipeLr, defaultRunDir).
 */
export const TRAIN_DEFAULTS = Object.freeze({
  /** Training resolution (the recipe's, and the zoo's 1k models'). */
  imageSize: 224,
  /** Images per micro-batch (accumSteps multiplies it per optimizer step). */
  batchSize: 32,
  minLr: 1e-6,
  warmupEpochs: 0,
  weightDecay: 0.05,
  layerDecay: 1,
  labelSmoothing: 0.1,
  dropPathRate: 0.1,
  accumSteps: 1,
  mixup: 0,
  cutmix: 0,
  /** timm's --aa: no automatic augmentation unless asked ('trivial', 'rand-m9-mstd0.5-inc1', ...). */
  autoAugment: DEFAULT_AUTO_AUGMENT as string,
  /** RandomResizedCrop's area fraction and aspect ratio ranges (timm's --scale, --ratio). */
  scale: RRC_SCALE,
  ratio: RRC_RATIO,
  seed: 0,
});

/** How a training loop (train, and FCMAE's pretrain) runs and where it starts: options both share. */
export interface RunOptions {
  /** Continue from <out>/checkpoint.safetensors (exactly: the same data order, augmentations and masks). */
  resume?: boolean;
  /**
   * Data-parallel worker threads, each with a replica and its share of every batch (default 'auto':
   * every core, at most one per pair of images in a batch); 1 trains in this thread. Results do not
   * depend on the count (src/train/data_parallel/task.ts).
   */
  workers?: number | 'auto';
  /**
   * Samples a replica computes at once: its share of a micro-batch runs in chunks of at most this
   * many (even: whole Mixup/CutMix pairs), the gradients combined as micro-batches are, so results do
   * not depend on it. Default 'auto': on the wasm backend the largest chunk whose estimated step fits
   * its 4 GB heap (src/train/data_parallel/footprint.ts), no chunking on the others.
   */
  chunkSize?: ChunkSize;
  /** Unused since the data-parallel engine (each replica decodes its next share ahead); accepted for compatibility. */
  prefetch?: number;
  /** Stop after this many epochs in this call (for tests of resume); the schedule still spans `epochs`. */
  stopAfterEpochs?: number;
}

/** TrainOptions with every default filled in. */
export type ResolvedTrainOptions = TrainOptions & {
  -readonly [K in keyof typeof TRAIN_DEFAULTS]: (typeof TRAIN_DEFAULTS)[K] extends boolean
    ? boolean
    : (typeof TRAIN_DEFAULTS)[K] extends number
      ? number
      : (typeof TRAIN_DEFAULTS)[K];
};

/**
 * The recipe's peak learning rate at a given batch size, by the linear scaling rule: ImageNet-1K
 * training from scratch uses AdamW lr 4e-3 at batch 4096; fine-tuning pretrained weights (ImageNet-22K
 * to 1K) lr 5e-5 at batch 512. Batch 32: 3.125e-5 from scratch, 3.125e-6 fine-tuning.
 */
export function recipeLr(batchSize: number, fineTune: boolean): number {
  return fineTune ? (5e-5 * batchSize) / 512 : (4e-3 * batchSize) / 4096;
}

/** The default output folder: runs/<UTC timestamp>, e.g. runs/2026-12-01T21-30-05. */
export function defaultRunDir(now = new Date()): string {
  return path.join('runs', now.toISOString().slice(0, 19).replace(/:/g, '-'));
}

/** Options a caller must give (no default makes sense): the data, the architecture and the epoch count. */
export const REQUIRED_TRAIN_OPTIONS = ['data', 'arch', 'epochs'] as const;

/** `o` with the defaults filled in for imageSize, batchSize, lr (recipe, scaled) and out (runs/<timestamp>). */
export function withTrainDefaults(o: Partial<TrainOptions> & Pick<TrainOptions, 'data' | 'arch' | 'epochs'>): ResolvedTrainOptions {
  const given = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as typeof o;
  const d = { ...TRAIN_DEFAULTS, ...given, autoAugment: resolveAutoAugment(o) };
  return { ...d, lr: o.lr ?? recipeLr(d.batchSize * d.accumSteps, !!o.init), out: o.out ?? defaultRunDir() };
}

type Check = (v: number) => boolean;
const isInt: Check = (v) => Number.isInteger(v);

/**
 * Throws TrainOptionError for the first option that is missing or out of range, every missing
 * required option listed at once. Checks values only, and the file system where a path must exist
 * (data, val, init files are checked by their loaders): `out` must not be an existing file.
 */
export function validateTrainOptions(o: Partial<TrainOptions>): void {
  const missing: string[] = [...REQUIRED_TRAIN_OPTIONS, 'imageSize', 'batchSize', 'lr', 'out'].filter((k) => {
    const v = o[k as keyof TrainOptions];
    return v === undefined || v === '';
  });
  if (missing.length) throw new TrainOptionError(missing[0], `missing training option${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);

  const bad = (option: string, rule: string, v: unknown): never => {
    throw new TrainOptionError(option, `${option} must be ${rule}, got ${JSON.stringify(v)}`);
  };
  const num = (option: keyof TrainOptions, rule: string, ok: Check, optional = true): void => {
    const v = o[option];
    if (v === undefined && optional) return;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) bad(option, rule, v);
  };
  for (const k of ['data', 'arch', 'out'] as const) {
    const v = o[k];
    if (typeof v !== 'string' || v.trim() === '') bad(k, 'a non-empty string', v);
  }
  num('epochs', 'a positive integer', (v) => isInt(v) && v >= 1, false);
  num('imageSize', `an integer from ${MIN_INPUT_SIZE} to ${MAX_INPUT_SIZE}`, (v) => isInt(v) && v >= MIN_INPUT_SIZE && v <= MAX_INPUT_SIZE, false);
  num('batchSize', 'an integer from 1 to 4096', (v) => isInt(v) && v >= 1 && v <= 4096, false);
  num('lr', 'a positive number', (v) => v > 0, false);
  num('minLr', 'a number >= 0', (v) => v >= 0);
  if (o.minLr !== undefined && o.lr !== undefined && o.minLr > o.lr) bad('minLr', `at most lr (${o.lr})`, o.minLr);
  num('warmupEpochs', 'a number >= 0, below epochs', (v) => v >= 0 && (o.epochs === undefined || v < o.epochs || v === 0));
  num('weightDecay', 'a number >= 0', (v) => v >= 0);
  num('layerDecay', 'in (0, 1] (1 = off)', (v) => v > 0 && v <= 1);
  num('labelSmoothing', 'in [0, 1)', (v) => v >= 0 && v < 1);
  num('dropPathRate', 'in [0, 1)', (v) => v >= 0 && v < 1);
  num('emaDecay', 'in (0, 1)', (v) => v > 0 && v < 1);
  num('accumSteps', 'a positive integer', (v) => isInt(v) && v >= 1);
  num('mixup', 'a number >= 0 (0 = off)', (v) => v >= 0);
  num('cutmix', 'a number >= 0 (0 = off)', (v) => v >= 0);
  num('valSplit', 'in (0, 1)', (v) => v > 0 && v < 1);
  num('seed', 'an integer', isInt);
  num('prefetch', 'a positive integer', (v) => isInt(v) && v >= 1);
  if (o.workers !== undefined && o.workers !== 'auto' && !(isInt(o.workers) && o.workers >= 1)) bad('workers', "'auto' or a positive integer", o.workers);
  if (o.chunkSize !== undefined && !isChunkSize(o.chunkSize)) bad('chunkSize', CHUNK_SIZE_RULE, o.chunkSize);
  if (o.freeze !== undefined && o.freeze !== 'head' && !(isInt(o.freeze) && o.freeze >= 0 && o.freeze <= 4))
    bad('freeze', "'head' or a number of stages 0-4", o.freeze);
  if (o.autoAugment !== undefined) {
    parseAutoAugment(o.autoAugment); // throws TrainOptionError('autoAugment') naming the valid forms
    if (o.trivialAugment !== undefined && resolveAutoAugment({ trivialAugment: o.trivialAugment }) !== o.autoAugment)
      bad('trivialAugment', `absent (deprecated: autoAugment replaces it) or agree with autoAugment ${JSON.stringify(o.autoAugment)}`, o.trivialAugment);
  }
  const range = (option: 'scale' | 'ratio', rule: string, ok: (lo: number, hi: number) => boolean): void => {
    const v = o[option];
    if (v === undefined) return;
    if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)) || !ok(v[0], v[1])) bad(option, rule, v);
  };
  range('scale', '[min, max] with 0 < min <= max <= 1 (area fractions of the image)', (lo, hi) => lo > 0 && lo <= hi && hi <= 1);
  range('ratio', '[min, max] with 0 < min <= max (aspect ratios, width / height)', (lo, hi) => lo > 0 && lo <= hi);
  if (o.val && o.valSplit) throw new TrainOptionError('valSplit', 'use either a val folder or valSplit, not both');
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(o.out as string);
  } catch {
    // created by the trainer
  }
  if (st !== null && !st.isDirectory()) bad('out', 'a directory (it is created if missing), not an existing file', o.out);
}
