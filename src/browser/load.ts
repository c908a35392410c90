/**
 * Converted model directories (src/io/model_dir.ts's format: model.json + 4 MiB shards, float32
 * or float16) loaded over fetch in a page, with progress events: the shards are streamed and
 * counted as they arrive (the total comes from the manifest, so a server without Content-Length
 * still gets a true progress bar).
 *
 *   const { model, meta } = await loadModelFromUrl('models/convnext_tiny/', {
 *     onProgress: (p) => bar.value = p.loaded / p.total,
 *   });
 *
 * A model on another origin needs CORS headers (Access-Control-Allow-Origin) on model.json and
 * its shards.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LoadedModel, parseMeta } from '../io/model_dir';
import { ModelFormatError } from '../errors';
import { ModelMeta } from '../model/meta';
import { ConvNeXt } from '../model/convnext';

/** One progress event (transformers.js's shape): what is loading and how far it is. */
export interface LoadProgress {
  status: 'manifest' | 'weights' | 'reading' | 'converting' | 'done';
  /** The URL or file being read. */
  file: string;
  /** Bytes read so far, of `total` (the whole model's weights). */
  loaded: number;
  total: number;
}

export type ProgressCallback = (p: LoadProgress) => void;

export interface UrlLoadOptions {
  onProgress?: ProgressCallback;
  /** Replaces globalThis.fetch (tests, auth headers). */
  fetchFunc?: typeof fetch;
  /** Passed to fetch: aborts the download. */
  signal?: AbortSignal;
}

interface Manifest {
  weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

function bytesOf(spec: tf.io.WeightsManifestEntry): number {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const q = spec.quantization?.dtype;
  return size * (q === 'float16' || q === 'uint16' ? 2 : q === 'uint8' ? 1 : 4);
}

/** The body of `res`, read chunk by chunk so that `onChunk` sees every byte arrive. */
export async function readBody(res: Response, onChunk: (n: number) => void): Promise<Uint8Array> {
  if (!res.body) {
    const buf = new Uint8Array(await res.arrayBuffer());
    onChunk(buf.length);
    return buf;
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    n += value.length;
    onChunk(value.length);
  }
  const out = new Uint8Array(n);
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

async function get(url: string, opts: UrlLoadOptions): Promise<Response> {
  const f = opts.fetchFunc ?? globalThis.fetch.bind(globalThis);
  let res: Response;
  try {
    res = await f(url, { signal: opts.signal });
  } catch (e) {
    throw new ModelFormatError(`${url}: could not load (${(e as Error).message}; a model on another origin needs CORS headers)`);
  }
  if (!res.ok) throw new ModelFormatError(`${url}: HTTP ${res.status} ${res.statusText}`);
  return res;
}

/** model.json's URL for a directory URL (with or without the trailing slash) or the model.json itself. */
export function modelJsonUrl(source: string): string {
  const base = (globalThis as { location?: { href: string } }).location?.href;
  const abs = new URL(source, base).href;
  return /\.json([?#].*)?$/.test(abs) ? abs : abs.replace(/\/?([?#].*)?$/, '/model.json$1');
}

/** Builds the model from decoded weights (the variables take over the tensors' data). */
export function modelFromWeights(meta: ModelMeta, tensors: Map<string, tf.Tensor>, where: string): ConvNeXt {
  try {
    return new ConvNeXt(meta.config, 0, tensors);
  } catch (e) {
    throw new ModelFormatError(`${where}: ${(e as Error).message}`);
  } finally {
    tf.dispose([...tensors.values()]);
  }
}

/**
 * Loads a converted model directory by URL (relative URLs resolve against the page): model.json,
 * then every shard in manifest order, reporting progress.
 */
export async function loadModelFromUrl(source: string, opts: UrlLoadOptions = {}): Promise<LoadedModel> {
  const url = modelJsonUrl(source);
  const emit = opts.onProgress ?? (() => undefined);
  emit({ status: 'manifest', file: url, loaded: 0, total: 0 });
  let json: Manifest;
  try {
    json = (await (await get(url, opts)).json()) as Manifest;
  } catch (e) {
    if (e instanceof ModelFormatError) throw e;
    throw new ModelFormatError(`${url}: model.json is not valid JSON (${(e as Error).message})`);
  }
  const meta = parseMeta(json, url);
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest)) throw new ModelFormatError(`${url}: no weightsManifest`);
  const specs = manifest.flatMap((g) => g.weights);
  const total = specs.reduce((n, s) => n + bytesOf(s), 0);
  const data = new Uint8Array(total);
  let loaded = 0;
  for (const group of manifest) {
    for (const p of group.paths) {
      const shardUrl = new URL(p, url).href;
      const bytes = await readBody(await get(shardUrl, opts), (n) => {
        loaded += n;
        emit({ status: 'weights', file: shardUrl, loaded: Math.min(loaded, total), total });
      });
      const at = loaded - bytes.length;
      if (at + bytes.length > total) throw new ModelFormatError(`${url}: weight shards hold more than the ${total} bytes the manifest describes`);
      data.set(bytes, at);
    }
  }
  if (loaded !== total) throw new ModelFormatError(`${url}: weight shards hold ${loaded} bytes, the manifest describes ${total}`);
  for (const s of specs) {
    const q = s.quantization?.dtype;
    if (s.dtype !== 'float32' || (q !== undefined && q !== 'float16')) {
      throw new ModelFormatError(`${url}: weight ${s.name} is stored as ${q ?? s.dtype}; this reader takes float32 and float16`);
    }
  }
  const tensors = new Map(Object.entries(tf.io.decodeWeights(data.buffer, specs)));
  const model = modelFromWeights(meta, tensors, url);
  emit({ status: 'done', file: url, loaded: total, total });
  return { model, meta };
}
