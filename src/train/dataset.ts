/**
 * Image-folder datasets (torchvision ImageFolder: one subfolder per class, classes sorted by name)
 * and a streaming batch loader: images are decoded and transformed batch by batch with a bounded
 * number of batches prefetched, so the dataset is never held in memory.
 */
import * as fs from 'fs';
import * as path from 'path';
import seedrandom from 'seedrandom';
import { ConvNeXtError } from '../errors';
import { IMAGE_EXTENSIONS, decodeImage } from '../data/decode';
import { RgbImage } from '../data/image';
import { ImageError } from '../errors';
import { SkippedEntry, listFiles } from '../util/fs';
import { Rng } from './augment';

export interface Sample {
  file: string;
  label: number;
  /** Stable identity for seeding augmentations (path relative to the dataset root); defaults to `file`. */
  key?: string;
}

export interface ImageFolder {
  root: string;
  classes: string[];
  samples: Sample[];
}

/**
 * Scans `root`/<class>/**.{jpg,png,...}. With `classes`, the class order is imposed (a val folder
 * must use the train folder's classes); a class folder missing there is allowed to be empty.
 * Links are followed (loops detected); what the walk leaves out (FIFOs, broken links, loops, other
 * extensions) goes to `onSkip` with the reason.
 */
export function scanImageFolder(root: string, classes?: string[], onSkip?: (s: SkippedEntry) => void): ImageFolder {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new ConvNeXtError(`dataset ${root}: not a directory`);
  const dirs = fs
    .readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  if (classes) {
    const unknown = dirs.filter((d) => !classes.includes(d));
    if (unknown.length)
      throw new ConvNeXtError(`dataset ${root}: class folder(s) ${unknown.join(', ')} are not among the training classes (${classes.join(', ')})`);
  }
  const cls = classes ?? dirs;
  if (cls.length < 2) throw new ConvNeXtError(`dataset ${root}: needs at least 2 class subfolders, found ${cls.length}`);
  const samples: Sample[] = [];
  cls.forEach((c, label) => {
    const files = fs.existsSync(path.join(root, c)) ? listFiles(path.join(root, c), IMAGE_EXTENSIONS, onSkip) : [];
    for (const file of files) samples.push({ file, label, key: path.relative(root, file) });
  });
  if (samples.length === 0) throw new ConvNeXtError(`dataset ${root}: no images found`);
  return { root, classes: cls, samples };
}

/** Seeded stratified split: `fraction` of each class goes to validation (at least one when possible). */
export function splitTrainVal(ds: ImageFolder, fraction: number, seed: number): { train: ImageFolder; val: ImageFolder } {
  if (!(fraction > 0 && fraction < 1)) throw new ConvNeXtError(`--val-split must be in (0, 1), got ${fraction}`);
  const rng = seedrandom(`split-${seed}`);
  const train: Sample[] = [];
  const val: Sample[] = [];
  ds.classes.forEach((_, label) => {
    const of = shuffled(
      ds.samples.filter((s) => s.label === label),
      rng,
    );
    const nVal = of.length > 1 ? Math.max(1, Math.round(of.length * fraction)) : 0;
    val.push(...of.slice(0, nVal));
    train.push(...of.slice(nVal));
  });
  return { train: { ...ds, samples: train }, val: { ...ds, samples: val } };
}

/** Fisher-Yates with the given generator. */
export function shuffled<T>(xs: T[], rng: Rng): T[] {
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

export interface Batch {
  /** NHWC float32, normalised. */
  x: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
  files: string[];
}

export interface LoaderOptions {
  batchSize: number;
  /** Output side. */
  size: number;
  /** Decoded image -> normalised NHWC [1, size, size, 3] values (train or eval transform). */
  transform: (img: RgbImage, rng: Rng) => Float32Array;
  shuffle: boolean;
  /** Seed of shuffling and augmentation; combine with the epoch for a fresh order each epoch. */
  seed: string;
  dropLast?: boolean;
  /** Batches decoded ahead of the consumer (default 2). */
  prefetch?: number;
  /** Called for an image that cannot be decoded (it is skipped). */
  onSkip?: (file: string, error: Error) => void;
  /** Start at this batch index (resume mid-epoch). */
  startBatch?: number;
}

/** Number of batches an epoch has. */
export function batchCount(n: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/** The order of an epoch's samples: seeded by `seed` (seed and epoch) when shuffling. */
export function epochOrder(samples: Sample[], shuffle: boolean, seed: string): Sample[] {
  return shuffle ? shuffled(samples, seedrandom(`order-${seed}`)) : samples;
}

/** A decoded batch, with the position in `chunk` of each image kept (undecodable ones are skipped). */
export interface DecodedChunk extends Batch {
  positions: number[];
}

/**
 * Decodes and transforms `chunk` in order. Each image gets its own generator, keyed by `seed` and
 * the sample's key, so its augmentation does not depend on which batch, worker or prefetch timing
 * it comes with.
 */
export async function decodeChunk(
  chunk: Sample[],
  size: number,
  transform: LoaderOptions['transform'],
  seed: string,
  onSkip?: LoaderOptions['onSkip'],
): Promise<DecodedChunk> {
  const per = size * size * 3;
  const parts: { data: Float32Array; label: number; file: string; position: number }[] = [];
  for (let i = 0; i < chunk.length; i++) {
    const s = chunk[i];
    const rng = seedrandom(`aug-${seed}-${s.key ?? s.file}`);
    try {
      parts.push({ data: transform(await decodeImage(s.file), rng), label: s.label, file: s.file, position: i });
    } catch (e) {
      // Whatever one image throws is about that image: the epoch goes on without it.
      const text = e instanceof Error ? e.message : String(e);
      onSkip?.(s.file, e instanceof ConvNeXtError ? e : new ImageError(`image ${s.file}: cannot preprocess (${text})`, text));
    }
  }
  const x = new Float32Array(parts.length * per);
  parts.forEach((p, i) => x.set(p.data, i * per));
  return {
    x,
    shape: [parts.length, size, size, 3],
    labels: Int32Array.from(parts.map((p) => p.label)),
    files: parts.map((p) => p.file),
    positions: parts.map((p) => p.position),
  };
}

/** Streams batches; at most `prefetch` batches are decoded ahead. */
export async function* batches(samples: Sample[], o: LoaderOptions): AsyncGenerator<Batch> {
  const order = epochOrder(samples, o.shuffle, o.seed);
  const nb = batchCount(order.length, o.batchSize, o.dropLast);
  const make = async (b: number): Promise<Batch> => {
    const { x, shape, labels, files } = await decodeChunk(order.slice(b * o.batchSize, (b + 1) * o.batchSize), o.size, o.transform, o.seed, o.onSkip);
    return { x, shape, labels, files };
  };
  const queue: Promise<Batch>[] = [];
  let next = o.startBatch ?? 0;
  const depth = Math.max(1, o.prefetch ?? 2);
  while (next < nb && queue.length < depth) queue.push(make(next++));
  while (queue.length) {
    const b = await queue.shift()!;
    if (next < nb) queue.push(make(next++));
    if (b.labels.length) yield b;
  }
}
