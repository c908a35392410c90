/**
 * Images in, answers out, in a page: the browser counterpart of src/inference/predictor.ts (same
 * preprocessing defaults, labels, softmax and top-k order), without file paths or worker threads.
 *
 *   await initBackend();                                         // webgpu > webgl > wasm > cpu
 *   const p = await BrowserPredictor.load('models/convnext_tiny/', { onProgress });
 *   const top5 = await p.classify(imgElementOrFileOrUrl, { topk: 5 });
 *   const { top, stages } = await p.classifyWithStages(file);    // + the four stage maps
 *
 * Sources: a converted model directory URL, a checkpoint URL (.pth/.pt/.bin/.safetensors) or a
 * checkpoint File/ArrayBuffer, converted in the page (src/browser/convert.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConvNeXtError } from '../errors';
import { Float32Array4D, evalTransform } from '../data/transforms';
import { LoadedModel, MODEL_FORMAT_VERSION } from '../io/model_dir';
import { ModelMeta } from '../model/meta';
import { PreprocessingInfo } from '../model/preprocessing';
import { ConvNeXt } from '../model/convnext';
import { modelFromConverted } from '../../weights-converter/convert';
import { Prediction, adoptLoaded, predictorSettings, topk } from '../inference/predictions';
import { BrowserConvertOptions, CheckpointInput, convertCheckpointBytes } from './convert';
import { BrowserImageInput, decodeBrowserImage } from '../data/bitmap.browser';
import { UrlLoadOptions, loadModelFromUrl, modelJsonUrl, readBody } from './load';

export { Prediction, topk };

export type ModelSource = string | URL | CheckpointInput | LoadedModel;

export interface BrowserPredictorOptions extends UrlLoadOptions, Omit<BrowserConvertOptions, 'onProgress'> {
  /** Class names (default: stored with the model, ImageNet-1k for 1000-class heads, else class_<i>). */
  labels?: string[];
  /** Overrides of the stored/default preprocessing. */
  preprocessing?: Partial<PreprocessingInfo>;
}

const CHECKPOINT_URL = /\.(pth|pt|bin|safetensors)([?#].*)?$/i;

/** True for a URL that names a checkpoint file rather than a converted model directory. */
export function isCheckpointUrl(url: string): boolean {
  return CHECKPOINT_URL.test(url);
}

function isFloat32Array4D(x: unknown): x is Float32Array4D {
  const a = x as Partial<Float32Array4D> | null;
  return typeof a === 'object' && a !== null && Array.isArray(a.shape) && a.data instanceof Float32Array;
}

function isLoadedModel(x: unknown): x is LoadedModel {
  return typeof x === 'object' && x !== null && (x as LoadedModel).model instanceof ConvNeXt;
}

async function fetchCheckpoint(url: string, opts: BrowserPredictorOptions): Promise<Uint8Array> {
  const abs = new URL(url, (globalThis as { location?: { href: string } }).location?.href).href;
  let res: Response;
  try {
    res = await (opts.fetchFunc ?? globalThis.fetch.bind(globalThis))(abs, { signal: opts.signal });
  } catch (e) {
    throw new ConvNeXtError(`${abs}: could not load (${(e as Error).message}; a checkpoint on another origin needs CORS headers)`);
  }
  if (!res.ok) throw new ConvNeXtError(`${abs}: HTTP ${res.status} ${res.statusText}`);
  // Streamed so that a progress bar moves while a large checkpoint downloads (total: Content-Length, if sent).
  const total = Number(res.headers.get('content-length') ?? 0);
  let loaded = 0;
  return readBody(res, (n) => {
    loaded += n;
    opts.onProgress?.({ status: 'weights', file: abs, loaded, total: Math.max(total, loaded) });
  });
}

/** Loads any ModelSource into a live model plus its metadata. */
export async function loadBrowserModel(source: ModelSource, opts: BrowserPredictorOptions = {}): Promise<LoadedModel> {
  if (isLoadedModel(source)) return source;
  let bytes: CheckpointInput;
  let name = opts.name;
  if (typeof source === 'string' || source instanceof URL) {
    const url = String(source);
    if (!isCheckpointUrl(url)) return loadModelFromUrl(modelJsonUrl(url), opts);
    bytes = await fetchCheckpoint(url, opts);
    name ??= url.replace(/[?#].*$/, '').replace(/^.*\//, '');
  } else {
    bytes = source;
  }
  const c = await convertCheckpointBytes(bytes, { ...opts, name });
  const model = modelFromConverted(c);
  opts.onProgress?.({ status: 'done', file: name ?? 'checkpoint', loaded: 1, total: 1 });
  return { model, meta: { formatVersion: MODEL_FORMAT_VERSION, storage: 'float32', ...c.meta } };
}

export class BrowserPredictor {
  readonly labels: string[];
  readonly preprocessing: PreprocessingInfo;

  constructor(
    readonly model: ConvNeXt,
    readonly meta: Partial<ModelMeta> = {},
    opts: Pick<BrowserPredictorOptions, 'labels' | 'preprocessing'> = {},
  ) {
    ({ labels: this.labels, preprocessing: this.preprocessing } = predictorSettings(model, meta, opts));
  }

  static async load(source: ModelSource, opts: BrowserPredictorOptions = {}): Promise<BrowserPredictor> {
    return adoptLoaded(await loadBrowserModel(source, opts), (model, meta) => new BrowserPredictor(model, meta, opts));
  }

  /** Decodes the image (browser decoders) and applies timm's eval transform: NHWC [1, S, S, 3]. */
  async preprocess(image: BrowserImageInput): Promise<Float32Array4D> {
    return evalTransform(await decodeBrowserImage(image), this.preprocessing);
  }

  private checkHead(): void {
    if (this.model.numClasses === 0) throw new ConvNeXtError('this model has no classifier head (numClasses 0)');
  }

  /** Top-k classes of one normalised NHWC input [1, S, S, 3] (the caller keeps `x`). */
  async classifyTensor(x: tf.Tensor4D, opts: { topk?: number } = {}): Promise<Prediction[]> {
    this.checkHead();
    const probs = tf.tidy(() => tf.softmax(this.model.forward(x)));
    try {
      return topk((await probs.data()) as Float32Array, opts.topk ?? 5, this.labels);
    } finally {
      probs.dispose();
    }
  }

  /** Top-k classes with probabilities for one image. */
  async classify(image: BrowserImageInput, opts: { topk?: number } = {}): Promise<Prediction[]> {
    const x = await this.preprocess(image);
    const t = tf.tensor4d(x.data, x.shape);
    try {
      return await this.classifyTensor(t, opts);
    } finally {
      t.dispose();
    }
  }

  /**
   * One forward pass giving the top-k and the four stage maps (NHWC, strides 4/8/16/32) as
   * per-position L2 norms over channels, [h, w] each, for heat maps. Also the full probabilities.
   */
  async classifyWithStages(
    image: BrowserImageInput | Float32Array4D,
    opts: { topk?: number } = {},
  ): Promise<{ top: Prediction[]; probs: Float32Array; stages: { height: number; width: number; data: Float32Array }[] }> {
    this.checkHead();
    const x = isFloat32Array4D(image) ? image : await this.preprocess(image);
    const { probs, norms } = tf.tidy(() => {
      const input = tf.tensor4d(x.data, x.shape);
      const maps = this.model.forwardStages(input);
      const p = tf.softmax(this.model.forwardHead(maps[3]));
      return { probs: p, norms: maps.map((m) => tf.sqrt(tf.sum(tf.square(m), -1)).squeeze([0]) as tf.Tensor2D) };
    });
    try {
      const values = (await probs.data()) as Float32Array;
      const stages = await Promise.all(norms.map(async (n) => ({ height: n.shape[0], width: n.shape[1], data: (await n.data()) as Float32Array })));
      return { top: topk(values, opts.topk ?? 5, this.labels), probs: values, stages };
    } finally {
      tf.dispose([probs, ...norms]);
    }
  }

  dispose(): void {
    this.model.dispose();
  }
}
