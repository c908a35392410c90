/**
 * Writes a converted-model directory (format: src/io/model_dir.ts): model.json + 4 MiB shards, as
 * the TF.js converter lays them out. Atomic: shards get a content-derived name, model.json is
 * written to a temp file and renamed last, so a failed write never leaves a model.json behind (nor
 * replaces a good one); shards of a previous model in the directory are removed only afterwards.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { ConvNeXtError } from '../src/errors';
import { MODEL_FORMAT, MODEL_FORMAT_VERSION, ModelMeta } from '../src/io/model_dir';
import { encodeFloat16 } from './dtype';

export const SHARD_BYTES = 4 * 1024 * 1024;

const VERSION: string = require('../../package.json').version;

export interface WriteOptions {
  /** Store weights as float16 (half the size; loads back to float32, parity within ~2e-3 relative). */
  fp16?: boolean;
}

/** Weights to write: name -> float32 values in TF.js layout. */
export type WeightsToWrite = Map<string, { shape: number[]; data: Float32Array }>;

/** Weights of a live model, as plain arrays (reads each variable once). */
export function modelWeights(weights: Map<string, tf.Tensor>): WeightsToWrite {
  const out: WeightsToWrite = new Map();
  for (const [name, v] of weights) out.set(name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
  return out;
}

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
    const bytes = opts.fp16
      ? new Uint8Array(encodeFloat16(w.data).buffer)
      : new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength);
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
  const tmpJson = path.join(outDir, `.model.json.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  try {
    // Stream the concatenated weights into shards without building one big buffer.
    let partIdx = 0;
    let partOff = 0;
    for (let s = 0; s < nShards; s++) {
      const size = Math.min(SHARD_BYTES, total - s * SHARD_BYTES);
      const final = path.join(outDir, paths[s]);
      const tmp = `${final}.tmp`;
      const fd = fs.openSync(tmp, 'w');
      try {
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
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, final);
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
    fs.writeFileSync(tmpJson, JSON.stringify(modelJson, null, 1));
    fs.renameSync(tmpJson, path.join(outDir, 'model.json'));
  } catch (e) {
    for (const f of [...written, tmpJson, ...written.map((w) => `${w}.tmp`)]) fs.rmSync(f, { force: true });
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
