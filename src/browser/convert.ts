/**
 * The pure-TypeScript converter (weights-converter/) on a checkpoint a page holds: a File the user
 * dropped, a fetched ArrayBuffer. No server: the bytes go into the browser build's in-memory file
 * table (src/browser/node/fs.ts), where the converter's own readers (zip, torch pickles,
 * safetensors) run unchanged, so the page gets the same weights as Node's `convnext convert`.
 *
 *   const c = await convertCheckpointBytes(file);             // .pth / .pt / .bin / .safetensors
 *   const model = modelFromConverted(c);
 *
 * Deflated zip entries (rare: torch.save stores) are inflated first with the platform's
 * DecompressionStream('deflate-raw') and handed to the synchronous reader (src/browser/node/zlib.ts).
 */
import { Converted, ConvertOptions, convertCheckpoint } from '../../weights-converter/convert';
import { CheckpointError } from '../../weights-converter/errors';
import { ZipReader, isZip } from '../../weights-converter/zip';
import { ProgressCallback } from './load';
// The very modules the bundle serves as `fs` and `zlib` (scripts/build-browser.js aliases them).
import { putMemoryFile, removeMemoryFile } from './node/fs';
import { clearInflated, putInflated } from './node/zlib';

export type CheckpointInput = Blob | ArrayBuffer | Uint8Array;

export interface BrowserConvertOptions extends ConvertOptions {
  /** File name for messages and the source metadata (default: the File's name, else 'checkpoint'). */
  name?: string;
  /** Hugging Face config.json that sits beside the checkpoint (its layer_norm_eps and id2label matter). */
  hfConfig?: Blob | ArrayBuffer | Uint8Array | object;
  onProgress?: ProgressCallback;
}

/** The bytes of a Blob/File, read as a stream so `onProgress` sees them arrive. */
export async function readBlob(blob: Blob, name: string, onProgress?: ProgressCallback): Promise<Uint8Array> {
  const total = blob.size;
  const out = new Uint8Array(total);
  const reader = blob.stream().getReader();
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    out.set(value, n);
    n += value.length;
    onProgress?.({ status: 'reading', file: name, loaded: n, total });
  }
  return out;
}

async function bytesOf(input: CheckpointInput | object, name: string, onProgress?: ProgressCallback): Promise<Uint8Array> {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (typeof Blob !== 'undefined' && input instanceof Blob) return readBlob(input, name, onProgress);
  return new TextEncoder().encode(JSON.stringify(input));
}

/** Raw DEFLATE -> bytes, through the platform (DecompressionStream). */
export async function inflateRaw(raw: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([raw as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Inflates every deflated entry of a zip checkpoint ahead of the synchronous reader. */
async function preInflate(name: string, bytes: Uint8Array): Promise<void> {
  const zip = ZipReader.open(name);
  try {
    for (const entry of zip.entries.values()) {
      if (entry.method !== 8) continue;
      const at = zip.dataOffset(entry);
      const raw = bytes.subarray(at, at + entry.compressedSize);
      let out: Uint8Array;
      try {
        out = await inflateRaw(raw);
      } catch (e) {
        throw new CheckpointError(name, `corrupt zip: cannot inflate '${entry.name}': ${(e as Error).message}`);
      }
      putInflated(raw, out);
    }
  } finally {
    zip.close();
  }
}

/**
 * Converts a PyTorch (.pth/.pt/.bin, zip or legacy) or safetensors checkpoint held in the page into
 * TF.js-layout weights plus metadata (the same result as Node's convertCheckpoint on the file).
 */
export async function convertCheckpointBytes(input: CheckpointInput, opts: BrowserConvertOptions = {}): Promise<Converted> {
  const name = (opts.name ?? (typeof File !== 'undefined' && input instanceof File ? input.name : 'checkpoint')).replace(/^.*[\\/]/, '') || 'checkpoint';
  const bytes = await bytesOf(input, name, opts.onProgress);
  // HF checkpoints: the converter reads config.json beside the file.
  const configName = 'config.json';
  putMemoryFile(name, bytes);
  if (opts.hfConfig !== undefined) putMemoryFile(configName, await bytesOf(opts.hfConfig, configName));
  try {
    if (isZip(bytes.subarray(0, 4))) await preInflate(name, bytes);
    opts.onProgress?.({ status: 'converting', file: name, loaded: bytes.length, total: bytes.length });
    return await convertCheckpoint(name, opts);
  } finally {
    removeMemoryFile(name);
    removeMemoryFile(configName);
    clearInflated();
  }
}
