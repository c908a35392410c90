/**
 * Converted-model directories: TF.js's own weights format (tf.io conventions) plus ConvNeXt's config.
 *
 *   model.json   { format: 'convnext-tfjs', generatedBy, convertedBy, modelTopology: null,
 *                  weightsManifest: [{ paths: [shards], weights: [{ name, shape, dtype, quantization? }] }],
 *                  userDefinedMetadata: { convnext: ModelMeta } }
 *   *.bin        4 MiB shards of the concatenated little-endian weights (float32, or float16 with
 *                quantization { dtype: 'float16' } when converted with --fp16)
 *
 * Weight names are the model's (timm keys) and layouts TF.js's (NHWC convs, [in, out] Linears).
 * Loads from a local directory (or its model.json) and over http(s) via tf.io.http.
 *
 * Writing (writeModelDir) is atomic: shards get a content-derived name, model.json is written last
 * (writeFileAtomic), so a failed write never leaves a model.json behind (nor replaces a good one);
 * shards of a previous model in the directory are removed only afterwards.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { ConvNeXtError, ModelFormatError } from '../errors';
import { validateConfig } from '../model/configs';
import { ModelMeta } from '../model/meta';
import { ConvNeXt } from '../model/convnext';
import { decodeFloat16, encodeFloat16 } from '../../weights-converter/dtype';
import { writeFileAtomic } from '../util/fs';

export const MODEL_FORMAT = 'convnext-tfjs';
export const MODEL_FORMAT_VERSION = 1;

export interface LoadedModel {
  model: ConvNeXt;
  meta: ModelMeta;
}

function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** Reads the ConvNeXt metadata out of a parsed model.json, validating it. */
export function parseMeta(json: unknown, where: string): ModelMeta {
  const j = json as { format?: unknown; userDefinedMetadata?: { convnext?: ModelMeta }; weightsManifest?: unknown };
  const meta = j?.userDefinedMetadata?.convnext;
  if (!meta || typeof meta !== 'object' || !meta.config) {
    throw new ModelFormatError(`${where}: not a convnext-tfjs model.json (no userDefinedMetadata.convnext.config)`);
  }
  if (meta.formatVersion > MODEL_FORMAT_VERSION) {
    throw new ModelFormatError(`${where}: format version ${meta.formatVersion} is newer than this library reads (${MODEL_FORMAT_VERSION})`);
  }
  try {
    validateConfig(meta.config);
  } catch (e) {
    throw new ModelFormatError(`${where}: invalid config: ${(e as Error).message}`);
  }
  return meta;
}

/** model.json and the weights: fetched whole for a URL; for a local model, its shard files (read later, one at a time). */
async function readArtifacts(
  source: string,
): Promise<{ json: unknown; specs: tf.io.WeightsManifestEntry[]; data: tf.io.WeightData | string[]; where: string }> {
  if (isUrl(source)) {
    const url = source.endsWith('.json') ? source : source.replace(/\/?$/, '/model.json');
    let artifacts: tf.io.ModelArtifacts;
    try {
      const handler = tf.io.http(url, { fetchFunc: globalThis.fetch });
      artifacts = await handler.load!();
    } catch (e) {
      throw new ModelFormatError(`${url}: could not load (${(e as Error).message.split('\n')[0]})`);
    }
    const json = { userDefinedMetadata: artifacts.userDefinedMetadata };
    if (!artifacts.weightSpecs || !artifacts.weightData) throw new ModelFormatError(`${url}: no weights`);
    return { json, specs: artifacts.weightSpecs, data: artifacts.weightData, where: url };
  }
  const file = fs.existsSync(source) && fs.statSync(source).isDirectory() ? path.join(source, 'model.json') : source;
  let json: { weightsManifest?: tf.io.WeightsManifestConfig };
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ModelFormatError(`${file}: ${err.code === 'ENOENT' ? 'no such file' : `cannot read model.json (${err.message})`}`);
  }
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest)) throw new ModelFormatError(`${file}: no weightsManifest`);
  const dir = path.dirname(file);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const shards: string[] = [];
  for (const group of manifest) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      const shard = path.join(dir, p);
      if (path.relative(dir, shard).startsWith('..')) throw new ModelFormatError(`${file}: shard path ${p} leaves the model directory`);
      shards.push(shard);
    }
  }
  return { json, specs, data: shards, where: file };
}

/**
 * Reads consecutive bytes from a list of shard files, one shard in memory at a time: a weight inside
 * a shard comes back as a view of it, one spanning shards as a copy.
 */
class ShardStream {
  private index = 0;
  private shard: Uint8Array = new Uint8Array(0);
  private pos = 0;
  /** Bytes in all shards, from their sizes on disk. */
  readonly totalBytes: number;

  constructor(
    private readonly files: string[],
    private readonly where: string,
  ) {
    this.totalBytes = files.reduce((n, f) => n + this.stat(f), 0);
  }

  private stat(f: string): number {
    try {
      return fs.statSync(f).size;
    } catch (e) {
      throw new ModelFormatError(`${this.where}: cannot read weight shard ${path.basename(f)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }

  private nextShard(): void {
    const f = this.files[this.index++];
    try {
      this.shard = fs.readFileSync(f);
    } catch (e) {
      throw new ModelFormatError(`${this.where}: cannot read weight shard ${path.basename(f)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    this.pos = 0;
  }

  take(n: number): Uint8Array {
    if (this.pos === this.shard.length && this.index < this.files.length) this.nextShard();
    if (this.pos + n <= this.shard.length) {
      const view = this.shard.subarray(this.pos, this.pos + n);
      this.pos += n;
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.pos === this.shard.length) {
        if (this.index >= this.files.length) throw new ModelFormatError(`${this.where}: weight shards end early`);
        this.nextShard();
      }
      const k = Math.min(n - filled, this.shard.length - this.pos);
      out.set(this.shard.subarray(this.pos, this.pos + k), filled);
      filled += k;
      this.pos += k;
    }
    return out;
  }
}

/** Float32 values of one weight's bytes (stored float32, or float16 with --fp16). */
function weightValues(bytes: Uint8Array, storage: 'float32' | 'float16'): Float32Array {
  if (storage === 'float16') return decodeFloat16(bytes);
  // A view when 4-byte aligned (the shard's own buffer), else a copy.
  return bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4) : new Float32Array(bytes.slice().buffer);
}

/**
 * Tensors of a local model's weights, read shard by shard: each tensor goes to the backend as soon
 * as its bytes are in, so at most one shard (4 MiB) and one weight are held in JS at a time.
 */
function loadShardedWeights(files: string[], specs: tf.io.WeightsManifestEntry[], where: string): Map<string, tf.Tensor> {
  const stream = new ShardStream(files, where);
  const want = expectedBytes(specs);
  if (stream.totalBytes !== want) throw new ModelFormatError(`${where}: weight shards hold ${stream.totalBytes} bytes, the manifest describes ${want}`);
  const out = new Map<string, tf.Tensor>();
  try {
    for (const s of specs) {
      const q = s.quantization?.dtype;
      if (s.dtype !== 'float32' || (q !== undefined && q !== 'float16')) {
        throw new ModelFormatError(`${where}: weight ${s.name} is stored as ${q ?? s.dtype}; this reader takes float32 and float16`);
      }
      const size = s.shape.reduce((a, b) => a * b, 1);
      const storage = q === 'float16' ? 'float16' : 'float32';
      out.set(s.name, tf.tensor(weightValues(stream.take(size * (storage === 'float16' ? 2 : 4)), storage), s.shape, 'float32'));
    }
  } catch (e) {
    tf.dispose([...out.values()]);
    throw e;
  }
  return out;
}

function isShardList(d: tf.io.WeightData | string[]): d is string[] {
  return Array.isArray(d) && d.every((x) => typeof x === 'string');
}

function expectedBytes(specs: tf.io.WeightsManifestEntry[]): number {
  let n = 0;
  for (const s of specs) {
    const size = s.shape.reduce((a, b) => a * b, 1);
    const q = s.quantization?.dtype;
    n += size * (q === 'float16' || q === 'uint16' ? 2 : q === 'uint8' ? 1 : 4);
  }
  return n;
}

/**
 * Loads a converted model from a directory, its model.json, or an http(s) URL.
 *
 *   const { model, meta } = await loadConvertedModel('models/convnext_tiny');
 */
export async function loadConvertedModel(source: string): Promise<LoadedModel> {
  const { json, specs, data, where } = await readArtifacts(source);
  const meta = parseMeta(json, where);
  let tensors: Map<string, tf.Tensor>;
  if (isShardList(data)) {
    tensors = loadShardedWeights(data, specs, where);
  } else {
    const total = Array.isArray(data) ? data.reduce((a, b) => a + b.byteLength, 0) : data.byteLength;
    const want = expectedBytes(specs);
    if (total !== want) throw new ModelFormatError(`${where}: weight shards hold ${total} bytes, the manifest describes ${want}`);
    tensors = new Map(Object.entries(tf.io.decodeWeights(data, specs)));
  }
  try {
    // The variables take over the tensors' data: one copy of the weights on the backend.
    return { model: new ConvNeXt(meta.config, 0, tensors), meta };
  } catch (e) {
    throw new ModelFormatError(`${where}: ${(e as Error).message}`);
  } finally {
    tf.dispose([...tensors.values()]);
  }
}

/** True when `source` looks like a converted model (a directory with model.json, a .json, or a URL). */
export function isConvertedModel(source: string): boolean {
  if (isUrl(source)) return true;
  if (source.endsWith('.json')) return true;
  return fs.existsSync(path.join(source, 'model.json'));
}

export const SHARD_BYTES = 4 * 1024 * 1024;

/** The package version for model.json's generatedBy (read at run time: dist/src/io -> the package root; 'unknown' in a bundle). */
const VERSION: string = (() => {
  try {
    return (require(path.join(__dirname, '..', '..', '..', 'package.json')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

export interface WriteOptions {
  /** Store weights as float16 (half the size; loads back to float32, parity within ~2e-3 relative). */
  fp16?: boolean;
}

/** Weights to write: name -> float32 values in TF.js layout. */
export type WeightsToWrite = Map<string, { shape: number[]; data: Float32Array }>;

/**
 * Writes `weights` and `meta` to `outDir` (created if needed).
 * @returns the path of model.json
 */
export function writeModelDir(outDir: string, weights: WeightsToWrite, meta: Omit<ModelMeta, 'formatVersion' | 'storage'>, opts: WriteOptions = {}): string {
  fs.mkdirSync(outDir, { recursive: true });
  const storage = opts.fp16 ? 'float16' : 'float32';
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const [name, w] of weights) {
    const bytes = opts.fp16 ? new Uint8Array(encodeFloat16(w.data).buffer) : new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength);
    specs.push(opts.fp16 ? { name, shape: w.shape, dtype: 'float32', quantization: { dtype: 'float16' } } : { name, shape: w.shape, dtype: 'float32' });
    parts.push(bytes);
    total += bytes.byteLength;
  }
  const hash = crypto.createHash('sha256');
  for (const p of parts) hash.update(p);
  const tag = hash.digest('hex').slice(0, 12);
  const nShards = Math.max(1, Math.ceil(total / SHARD_BYTES));
  const paths = Array.from({ length: nShards }, (_, i) => `weights-${tag}-shard${i + 1}of${nShards}.bin`);

  const written: string[] = [];
  try {
    // Stream the concatenated weights into shards without building one big buffer.
    let partIdx = 0;
    let partOff = 0;
    for (let s = 0; s < nShards; s++) {
      const size = Math.min(SHARD_BYTES, total - s * SHARD_BYTES);
      const final = path.join(outDir, paths[s]);
      writeFileAtomic(final, (fd) => {
        let left = size;
        while (left > 0) {
          const p = parts[partIdx];
          const n = Math.min(left, p.byteLength - partOff);
          fs.writeSync(fd, p, partOff, n);
          left -= n;
          partOff += n;
          if (partOff === p.byteLength) {
            partIdx++;
            partOff = 0;
          }
        }
      });
      written.push(final);
    }
    const fullMeta: ModelMeta = { formatVersion: MODEL_FORMAT_VERSION, storage, ...meta };
    const modelJson = {
      format: MODEL_FORMAT,
      generatedBy: `convnext-tfjs ${VERSION}`,
      convertedBy: `convnext-tfjs weights-converter ${VERSION}`,
      modelTopology: null,
      weightsManifest: [{ paths, weights: specs }],
      userDefinedMetadata: { convnext: fullMeta },
    };
    writeFileAtomic(path.join(outDir, 'model.json'), JSON.stringify(modelJson, null, 1));
  } catch (e) {
    for (const f of written) fs.rmSync(f, { force: true });
    const err = e as NodeJS.ErrnoException;
    throw new ConvNeXtError(`cannot write model to ${outDir}: ${err.code ?? ''} ${err.message}`.trim());
  }
  // The new model.json is in place: drop shards of an earlier model in this directory.
  const keep = new Set(paths);
  for (const f of fs.readdirSync(outDir)) {
    if (/^(weights-[0-9a-f]{12}-shard\d+of\d+\.bin|group\d+-shard\d+of\d+\.bin)$/.test(f) && !keep.has(f)) fs.rmSync(path.join(outDir, f), { force: true });
  }
  return path.join(outDir, 'model.json');
}
