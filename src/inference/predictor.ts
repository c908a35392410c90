/**
 * Images in, answers out (tfjs-models style): a loaded ConvNeXt plus its preprocessing and labels.
 *
 *   const p = await Predictor.load('convnext_tiny.fb_in1k');          // zoo name, dir, URL or checkpoint
 *   const [top] = await p.classify(['cat.jpg'], { topk: 5 });          // [{ label, index, prob }, ...]
 *   const emb = await p.embed(['a.jpg', 'b.png']);                      // Float32Array per image
 *   const maps = await p.features('a.jpg');                              // 4 NHWC tensors (caller disposes)
 *
 * Inputs: a file path, encoded bytes (Buffer/Uint8Array) or a decoded RgbImage; tensors go through
 * the *Tensor variants (NHWC, already normalised). Every call is tidy: nothing leaks but what it
 * returns to you.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConvNeXtError } from '../errors';
import { decodeImage, resolveMaxImagePixels } from '../data/decode';
import { RgbImage } from '../data/image';
import { ImageError } from '../errors';
import { evalTransform } from '../data/transforms';
import { loadModel, LoadModelOptions } from '../factory';
import { ModelMeta } from '../model/meta';
import { PreprocessingInfo, checkInputSize } from '../model/preprocessing';
import { ConvNeXt } from '../model/convnext';
import { RunKind } from '../parallel/protocol';
import { Prediction, adoptLoaded, predictorSettings, topk } from './predictions';
import { BatchRunner, localRunner, pipeline, poolRunner, resolveWorkers } from './runner';

export type ImageInput = string | Buffer | Uint8Array | RgbImage;

export { Prediction };

/** Images per forward pass unless told otherwise (Predictor, evaluate, the CLI). */
export const DEFAULT_BATCH_SIZE = 8;
/** Classes returned per image by classify unless told otherwise. */
export const DEFAULT_TOPK = 5;

export interface PredictorOptions {
  /** Class names (default: stored with the model, ImageNet-1k for 1000-class heads, else class_<i>). */
  labels?: string[];
  /** Overrides of the stored/default preprocessing (e.g. { inputSize: 288, cropPct: 1 }). */
  preprocessing?: Partial<PreprocessingInfo>;
  /** Images per forward pass (default 8). */
  batchSize?: number;
  /**
   * Worker threads for classify/embed over many images (InferencePool replicas, one core each).
   * 1 (default): this thread. 'auto': every core when there is more than one batch.
   */
  workers?: number | 'auto';
  /**
   * Largest image decoded, in pixels, checked from each file's header before decoding (default
   * Pillow's MAX_IMAGE_PIXELS, 89,478,485); a larger image is refused with ImageError.
   */
  maxImagePixels?: number;
}

/** What to compute for each image of a batch, and how to cut the batch output into per-image values. */
export interface PredictJob<T> {
  kind: RunKind;
  rows(out: Float32Array, n: number): T[];
}

export type PredictorLoadOptions = PredictorOptions & LoadModelOptions;

function isRgbImage(x: ImageInput): x is RgbImage {
  return typeof x === 'object' && x !== null && !(x instanceof Uint8Array) && 'width' in x && 'data' in x;
}

/**
 * Reads a tensor's values and frees it. (Reading outside tf.tidy: tidy would walk a returned typed
 * array element by element.) Asynchronous: webgpu has no synchronous read in Node.
 */
async function readAndDispose(t: tf.Tensor): Promise<Float32Array> {
  try {
    return (await t.data()) as Float32Array;
  } finally {
    t.dispose();
  }
}

export class Predictor {
  readonly labels: string[];
  readonly preprocessing: PreprocessingInfo;
  readonly batchSize: number;
  readonly workers: number | 'auto';
  readonly maxImagePixels: number;
  private pool: Promise<BatchRunner> | null = null;

  constructor(
    readonly model: ConvNeXt,
    readonly meta: Partial<ModelMeta> = {},
    opts: PredictorOptions = {},
  ) {
    ({ labels: this.labels, preprocessing: this.preprocessing } = predictorSettings(model, meta, opts));
    checkInputSize(this.preprocessing.inputSize, 'preprocessing.inputSize');
    this.maxImagePixels = resolveMaxImagePixels(opts);
    this.batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
    if (!(Number.isInteger(this.batchSize) && this.batchSize > 0)) throw new ConvNeXtError(`batchSize must be a positive integer, got ${opts.batchSize}`);
    this.workers = opts.workers ?? 1;
    resolveWorkers(this.workers, 1, 1); // validates
  }

  /**
   * The runner for a job of `images` images: this thread, or the worker pool (started on first use
   * and kept until dispose()).
   */
  async runner(images: number): Promise<BatchRunner> {
    const workers = resolveWorkers(this.workers, images, this.batchSize);
    if (workers <= 1) return localRunner(this.model);
    // A pool that failed to start is not kept: the next call tries again.
    this.pool ??= poolRunner(this.model, workers).catch((e: unknown) => {
      this.pool = null;
      throw e;
    });
    return this.pool;
  }

  /** Top-k classes per image. */
  classifyJob(opts: { topk?: number } = {}): PredictJob<Prediction[]> {
    if (this.model.numClasses === 0) throw new ConvNeXtError('this model has no classifier head (numClasses 0): use embed()');
    const k = opts.topk ?? DEFAULT_TOPK;
    const n = this.model.numClasses;
    return { kind: 'probs', rows: (probs, rows) => Array.from({ length: rows }, (_, r) => topk(probs, k, this.labels, r * n, n)) };
  }

  /** Pooled pre-logits embedding [C] per image. */
  embedJob(): PredictJob<Float32Array> {
    const c = this.model.numFeatures;
    return { kind: 'embed', rows: (flat, rows) => Array.from({ length: rows }, (_, r) => flat.slice(r * c, (r + 1) * c)) };
  }

  /** Loads from a zoo name (downloading on first use), a converted dir/URL, or a PyTorch checkpoint. */
  static async load(source: string, opts: PredictorLoadOptions = {}): Promise<Predictor> {
    return adoptLoaded(await loadModel(source, opts), (model, meta) => new Predictor(model, meta, opts));
  }

  /** Decodes (if needed) and applies the eval transform: NHWC [1, S, S, 3] values. */
  async preprocess(input: ImageInput): Promise<Float32Array> {
    const img = isRgbImage(input) ? input : await decodeImage(input, { maxImagePixels: this.maxImagePixels });
    return evalTransform(img, this.preprocessing).data;
  }

  /** A normalised NHWC batch [N, S, S, 3] for the inputs (caller disposes). */
  async preprocessBatch(inputs: ImageInput[]): Promise<tf.Tensor4D> {
    const s = this.preprocessing.inputSize;
    const out = new Float32Array(inputs.length * s * s * 3);
    for (let i = 0; i < inputs.length; i++) out.set(await this.preprocess(inputs[i]), i * s * s * 3);
    return tf.tensor4d(out, [inputs.length, s, s, 3]);
  }

  /** A job over inputs in batches; the first input that cannot be read or decoded throws. */
  private async batched<T>(inputs: ImageInput[], job: PredictJob<T>): Promise<T[]> {
    const results: T[] = [];
    await runTolerant(this, inputs, job, (r) => {
      if ('error' in r) throw r.error;
      results.push(r.value);
    });
    return results;
  }

  /** Top-k classes of a normalised NHWC batch. */
  async classifyTensor(x: tf.Tensor4D, opts: { topk?: number } = {}): Promise<Prediction[][]> {
    const job = this.classifyJob(opts);
    return job.rows(await readAndDispose(tf.tidy(() => tf.softmax(this.model.forward(x)))), x.shape[0]);
  }

  /** Top-k classes with probabilities, one list per image. */
  async classify(inputs: ImageInput | ImageInput[], opts: { topk?: number } = {}): Promise<Prediction[][]> {
    return this.batched(Array.isArray(inputs) ? inputs : [inputs], this.classifyJob(opts));
  }

  /** Pooled pre-logits embeddings of a normalised NHWC batch, one Float32Array [C] per row. */
  async embedTensor(x: tf.Tensor4D): Promise<Float32Array[]> {
    return this.embedJob().rows(await readAndDispose(this.model.embed(x)), x.shape[0]);
  }

  /** Pooled pre-logits embeddings (pool -> final LayerNorm), one Float32Array [C] per image. */
  async embed(inputs: ImageInput | ImageInput[]): Promise<Float32Array[]> {
    return this.batched(Array.isArray(inputs) ? inputs : [inputs], this.embedJob());
  }

  /** The four stage maps of one image or a batch: NHWC tensors, strides 4/8/16/32; the caller disposes them. */
  async features(inputs: ImageInput | ImageInput[]): Promise<tf.Tensor4D[]> {
    const x = await this.preprocessBatch(Array.isArray(inputs) ? inputs : [inputs]);
    try {
      return this.model.forwardStages(x);
    } finally {
      x.dispose();
    }
  }

  /** Frees the model and stops the worker pool, if one was started. */
  async dispose(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    this.model.dispose();
    if (pool) await (await pool).dispose();
  }
}

/** An unexpected error while preprocessing one input, as an ImageError naming it (the original text as detail). */
function asImageError(input: ImageInput, e: unknown): ImageError {
  const text = e instanceof Error ? e.message : String(e);
  const name = typeof input === 'string' ? input : isRgbImage(input) ? '<RgbImage>' : '<buffer>';
  return new ImageError(`image ${name}: cannot preprocess (${text})`, text);
}

/** Outcome for one input of a tolerant batch run. */
export type ItemResult<T> = { input: ImageInput; index: number; value: T } | { input: ImageInput; index: number; error: Error };

/**
 * Runs a job over inputs in batches, tolerating inputs that cannot be read or decoded: each gets an
 * error result and the others still run. With a worker pool, several batches are in flight while the
 * next ones are decoded. Results arrive in input order through `onItem`.
 */
export async function runTolerant<T>(predictor: Predictor, inputs: ImageInput[], job: PredictJob<T>, onItem: (r: ItemResult<T>) => void): Promise<void> {
  const s = predictor.preprocessing.inputSize;
  const runner = await predictor.runner(inputs.length);
  interface Batch {
    start: number;
    chunk: ImageInput[];
    ok: Float32Array[];
    failed: Map<number, Error>;
  }
  let start = 0;
  const next = async (): Promise<Batch | undefined> => {
    if (start >= inputs.length) return undefined;
    const b: Batch = { start, chunk: inputs.slice(start, start + predictor.batchSize), ok: [], failed: new Map() };
    start += predictor.batchSize;
    for (let j = 0; j < b.chunk.length; j++) {
      try {
        b.ok.push(await predictor.preprocess(b.chunk[j]));
      } catch (e) {
        // Whatever one image throws is about that image: the others still run.
        b.failed.set(j, e instanceof ConvNeXtError ? e : asImageError(b.chunk[j], e));
      }
    }
    return b;
  };
  const run = async (b: Batch): Promise<T[]> => {
    if (b.ok.length === 0) return [];
    const buf = new Float32Array(b.ok.length * s * s * 3);
    b.ok.forEach((d, k) => buf.set(d, k * s * s * 3));
    return job.rows(await runner.run(job.kind, buf, [b.ok.length, s, s, 3]), b.ok.length);
  };
  await pipeline(runner.concurrency, next, run, (b, values) => {
    let k = 0;
    for (let j = 0; j < b.chunk.length; j++) {
      const err = b.failed.get(j);
      const index = b.start + j;
      onItem(err ? { input: b.chunk[j], index, error: err } : { input: b.chunk[j], index, value: values[k++] });
    }
  });
}
