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
import { decodeImage } from '../data/decode';
import { RgbImage } from '../data/image';
import { evalTransform } from '../data/transforms';
import { loadModel, LoadModelOptions } from '../io/load';
import { ModelMeta, PreprocessingInfo } from '../io/model_dir';
import { ConvNeXt } from '../model/convnext';
import { resolveLabels } from './labels';

export type ImageInput = string | Buffer | Uint8Array | RgbImage;

/** One class of a top-k answer. */
export interface Prediction {
  label: string;
  index: number;
  prob: number;
}

/** timm's default eval preprocessing for ConvNeXt at 224 (resize 256 bicubic, centre crop 224). */
export const DEFAULT_PREPROCESSING: PreprocessingInfo = {
  inputSize: 224,
  cropPct: 0.875,
  cropMode: 'center',
  interpolation: 'bicubic',
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

export interface PredictorOptions {
  /** Class names (default: stored with the model, ImageNet-1k for 1000-class heads, else class_<i>). */
  labels?: string[];
  /** Overrides of the stored/default preprocessing (e.g. { inputSize: 288, cropPct: 1 }). */
  preprocessing?: Partial<PreprocessingInfo>;
  /** Images per forward pass (default 8). */
  batchSize?: number;
}

export type PredictorLoadOptions = PredictorOptions & LoadModelOptions;

function isRgbImage(x: ImageInput): x is RgbImage {
  return typeof x === 'object' && x !== null && !(x instanceof Uint8Array) && 'width' in x && 'data' in x;
}

/** Reads a tensor's values and frees it. (Reading outside tf.tidy: tidy would walk a returned typed array element by element.) */
function readAndDispose(t: tf.Tensor): Float32Array {
  const data = t.dataSync() as Float32Array;
  t.dispose();
  return data;
}

function topk(probs: Float32Array, offset: number, n: number, k: number, labels: string[]): Prediction[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => probs[offset + b] - probs[offset + a] || a - b);
  return idx.slice(0, Math.min(k, n)).map((i) => ({ label: labels[i], index: i, prob: probs[offset + i] }));
}

export class Predictor {
  readonly labels: string[];
  readonly preprocessing: PreprocessingInfo;
  readonly batchSize: number;

  constructor(
    readonly model: ConvNeXt,
    readonly meta: Partial<ModelMeta> = {},
    opts: PredictorOptions = {},
  ) {
    this.labels = model.numClasses > 0 ? resolveLabels(model.numClasses, meta, opts.labels) : [];
    this.preprocessing = { ...DEFAULT_PREPROCESSING, ...(meta.preprocessing ?? {}), ...(opts.preprocessing ?? {}) };
    this.batchSize = opts.batchSize ?? 8;
    if (!(Number.isInteger(this.batchSize) && this.batchSize > 0)) throw new ConvNeXtError(`batchSize must be a positive integer, got ${opts.batchSize}`);
  }

  /** Loads from a zoo name (downloading on first use), a converted dir/URL, or a PyTorch checkpoint. */
  static async load(source: string, opts: PredictorLoadOptions = {}): Promise<Predictor> {
    const { model, meta } = await loadModel(source, opts);
    try {
      return new Predictor(model, meta, opts);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  /** Decodes (if needed) and applies the eval transform: NHWC [1, S, S, 3] values. */
  async preprocess(input: ImageInput): Promise<Float32Array> {
    const img = isRgbImage(input) ? input : await decodeImage(input);
    return evalTransform(img, this.preprocessing).data;
  }

  /** A normalised NHWC batch [N, S, S, 3] for the inputs (caller disposes). */
  async preprocessBatch(inputs: ImageInput[]): Promise<tf.Tensor4D> {
    const s = this.preprocessing.inputSize;
    const out = new Float32Array(inputs.length * s * s * 3);
    for (let i = 0; i < inputs.length; i++) out.set(await this.preprocess(inputs[i]), i * s * s * 3);
    return tf.tensor4d(out, [inputs.length, s, s, 3]);
  }

  /** run() over inputs in batches; the first input that cannot be read or decoded throws. */
  private async batched<T>(inputs: ImageInput[], run: (x: tf.Tensor4D) => T[]): Promise<T[]> {
    const results: T[] = [];
    await runTolerant(this, inputs, run, (r) => {
      if ('error' in r) throw r.error;
      results.push(r.value);
    });
    return results;
  }

  /** Top-k classes of a normalised NHWC batch. */
  classifyTensor(x: tf.Tensor4D, opts: { topk?: number } = {}): Prediction[][] {
    if (this.model.numClasses === 0) throw new ConvNeXtError('this model has no classifier head (numClasses 0): use embed()');
    const k = opts.topk ?? 5;
    const n = this.model.numClasses;
    const probs = readAndDispose(tf.tidy(() => tf.softmax(this.model.forward(x))));
    return Array.from({ length: x.shape[0] }, (_, r) => topk(probs, r * n, n, k, this.labels));
  }

  /** Top-k classes with probabilities, one list per image. */
  async classify(inputs: ImageInput | ImageInput[], opts: { topk?: number } = {}): Promise<Prediction[][]> {
    return this.batched(Array.isArray(inputs) ? inputs : [inputs], (x) => this.classifyTensor(x, opts));
  }

  /** Pooled pre-logits embeddings of a normalised NHWC batch, one Float32Array [C] per row. */
  embedTensor(x: tf.Tensor4D): Float32Array[] {
    const c = this.model.numFeatures;
    const flat = readAndDispose(this.model.embed(x));
    return Array.from({ length: x.shape[0] }, (_, r) => flat.slice(r * c, (r + 1) * c));
  }

  /** Pooled pre-logits embeddings (pool -> final LayerNorm), one Float32Array [C] per image. */
  async embed(inputs: ImageInput | ImageInput[]): Promise<Float32Array[]> {
    return this.batched(Array.isArray(inputs) ? inputs : [inputs], (x) => this.embedTensor(x));
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

  dispose(): void {
    this.model.dispose();
  }
}

/** Outcome for one input of a tolerant batch run. */
export type ItemResult<T> = { input: ImageInput; index: number; value: T } | { input: ImageInput; index: number; error: Error };

/**
 * Runs `run` over inputs in batches, tolerating inputs that cannot be read or decoded: each gets an
 * error result and the others still run. Results arrive in input order through `onItem`.
 */
export async function runTolerant<T>(
  predictor: Predictor,
  inputs: ImageInput[],
  run: (x: tf.Tensor4D) => T[],
  onItem: (r: ItemResult<T>) => void,
): Promise<void> {
  const s = predictor.preprocessing.inputSize;
  for (let start = 0; start < inputs.length; start += predictor.batchSize) {
    const chunk = inputs.slice(start, start + predictor.batchSize);
    const ok: { i: number; data: Float32Array }[] = [];
    const failed = new Map<number, Error>();
    for (let j = 0; j < chunk.length; j++) {
      try {
        ok.push({ i: j, data: await predictor.preprocess(chunk[j]) });
      } catch (e) {
        if (!(e instanceof ConvNeXtError)) throw e;
        failed.set(j, e);
      }
    }
    let values: T[] = [];
    if (ok.length) {
      const buf = new Float32Array(ok.length * s * s * 3);
      ok.forEach((o, k) => buf.set(o.data, k * s * s * 3));
      const x = tf.tensor4d(buf, [ok.length, s, s, 3]);
      try {
        values = run(x);
      } finally {
        x.dispose();
      }
    }
    let k = 0;
    for (let j = 0; j < chunk.length; j++) {
      const err = failed.get(j);
      onItem(err ? { input: chunk[j], index: start + j, error: err } : { input: chunk[j], index: start + j, value: values[k++] });
    }
  }
}
