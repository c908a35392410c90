/**
 * The local cache of pretrained models (what timm/torch.hub's hub cache does, plus the conversion):
 *
 *   <cacheDir>/checkpoints/<file>      the checkpoint as downloaded (kept; see below)
 *   <cacheDir>/<name>/model.json ...   the converted TF.js model (float32)
 *   <cacheDir>/<name>-fp16/ ...        the same, stored as float16 (resolved with { fp16: true })
 *
 * cacheDir: opts.cacheDir, else $CONVNEXT_CACHE, else $XDG_CACHE_HOME/convnext-tfjs, else
 * ~/.cache/convnext-tfjs.
 *
 * The checkpoint is kept after conversion, as timm keeps its hub files: a model can then be
 * re-converted (fp16, a newer converter) without the network, at the price of twice the disk; delete
 * <cacheDir>/checkpoints to reclaim it. A checkpoint that was just downloaded and fails to convert is
 * deleted again, so a failed resolve leaves no cache entry.
 *
 * Every cache entry appears by an atomic rename: the checkpoint through download()'s partial file,
 * the model directory by converting into a private staging directory beside it and renaming that. So
 * a model directory with model.json is always complete, and two processes resolving the same model
 * at once cannot corrupt it (both may download; the first rename wins, the other is discarded).
 *
 * Environment: CONVNEXT_CACHE (cache dir), CONVNEXT_OFFLINE=1 (never use the network),
 * CONVNEXT_MIRROR (a base URL replacing https://dl.fbaipublicfiles.com/).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { convertCheckpoint } from '../../weights-converter/convert';
import { writeModelDir } from '../io/model_dir';
import { DownloadProgress, download } from './download';
import { LabelSet, OFFICIAL_BASE_URL, ZooEntry, getPretrained, validateEntry } from './registry';
import { DownloadError, ZooError } from '../errors';
import { Env, settings } from '../env';

/** Progress of resolvePretrained: download progress, then one event when conversion starts. */
export type ZooProgress = DownloadProgress | { status: 'convert'; file: string; name: string };

export interface ResolveOptions {
  /** Cache root (default: see defaultCacheDir()). */
  cacheDir?: string;
  /** Never touch the network (also: CONVNEXT_OFFLINE=1, which cannot be overridden here). */
  offline?: boolean;
  /** Base URL replacing https://dl.fbaipublicfiles.com/ (default: $CONVNEXT_MIRROR). */
  mirror?: string;
  onProgress?: (p: ZooProgress) => void;
  /** Resolve the float16-stored conversion (<name>-fp16) instead of the float32 one. */
  fp16?: boolean;
  /** Download idle timeout (see download()). */
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
  /** Environment to read CONVNEXT_* / XDG_CACHE_HOME from (default process.env). */
  env?: Env;
}

export interface ResolvedPretrained {
  /** Converted model directory (load it with loadConvertedModel). */
  dir: string;
  entry: ZooEntry;
  /** Whether the checkpoint was downloaded by this call. */
  downloaded: boolean;
  /** Whether the model was converted by this call. */
  converted: boolean;
}

/** The default cache root: $CONVNEXT_CACHE, $XDG_CACHE_HOME/convnext-tfjs or ~/.cache/convnext-tfjs. */
export function defaultCacheDir(env: Env = process.env): string {
  const cache = settings.cacheDir(env);
  if (cache) return path.resolve(cache);
  const xdg = settings.xdgCacheHome(env);
  if (xdg) return path.resolve(xdg, 'convnext-tfjs');
  return path.join(os.homedir(), '.cache', 'convnext-tfjs');
}

/** Where an entry's checkpoint and converted model live in a cache. */
export function cachePaths(entry: ZooEntry, opts: { cacheDir?: string; fp16?: boolean; env?: Env } = {}): { modelDir: string; checkpoint: string } {
  const root = opts.cacheDir ? path.resolve(opts.cacheDir) : defaultCacheDir(opts.env);
  return {
    modelDir: path.join(root, opts.fp16 ? `${entry.name}-fp16` : entry.name),
    checkpoint: path.join(root, 'checkpoints', entry.file),
  };
}

/**
 * The URL to fetch an entry from: its official URL, with https://dl.fbaipublicfiles.com/ replaced by
 * the mirror base when one is given (URLs elsewhere are left alone).
 *
 *   downloadUrl(getPretrained('convnext_tiny.fb_in1k'), 'http://10.0.0.5/fb/');
 *   // 'http://10.0.0.5/fb/convnext/convnext_tiny_1k_224_ema.pth'
 */
export function downloadUrl(entry: ZooEntry, mirror?: string): string {
  if (!mirror) return entry.url;
  if (!/^https?:\/\/[^/]+/i.test(mirror)) throw new ZooError(`mirror must be an http(s) base URL, got '${mirror}'`);
  if (!entry.url.startsWith(OFFICIAL_BASE_URL)) return entry.url;
  return mirror.replace(/\/*$/, '/') + entry.url.slice(OFFICIAL_BASE_URL.length);
}

/** What the cache holds for an entry: a converted model, only its checkpoint, or nothing. */
export function cacheState(nameOrEntry: string | ZooEntry, opts: { cacheDir?: string; fp16?: boolean; env?: Env } = {}): 'converted' | 'checkpoint' | 'none' {
  const entry = typeof nameOrEntry === 'string' ? getPretrained(nameOrEntry) : nameOrEntry;
  const p = cachePaths(entry, opts);
  if (fs.existsSync(path.join(p.modelDir, 'model.json'))) return 'converted';
  return fs.existsSync(p.checkpoint) ? 'checkpoint' : 'none';
}

/** Checks a checkpoint already in the cache against the entry's known size and hash. */
async function verifyCached(entry: ZooEntry, file: string): Promise<void> {
  const remedy = `delete ${file} to download it again`;
  if (entry.sizeBytes !== undefined) {
    const size = fs.statSync(file).size;
    if (size !== entry.sizeBytes) throw new ZooError(`cached checkpoint ${file} has ${size} bytes, ${entry.name} has ${entry.sizeBytes}: ${remedy}`);
  }
  if (entry.sha256 !== undefined) {
    const hash = crypto.createHash('sha256');
    for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
    const digest = hash.digest('hex');
    if (digest !== entry.sha256.toLowerCase())
      throw new ZooError(`cached checkpoint ${file} has sha256 ${digest}, ${entry.name} has ${entry.sha256.toLowerCase()}: ${remedy}`);
  }
}

/** Converts the checkpoint into a staging directory and renames it to modelDir (atomic). */
async function convertInto(entry: ZooEntry, checkpoint: string, modelDir: string, fp16: boolean): Promise<void> {
  const c = await convertCheckpoint(checkpoint, { arch: entry.arch, labels: Array.isArray(entry.labels) ? entry.labels : undefined });
  if (c.config.numClasses !== entry.numClasses) {
    throw new ZooError(`checkpoint ${checkpoint} has a ${c.config.numClasses}-class head, ${entry.name} should have ${entry.numClasses}`);
  }
  const labelSet: LabelSet | undefined = typeof entry.labels === 'string' ? entry.labels : undefined;
  const meta = {
    ...c.meta,
    source: { ...c.meta.source, tag: entry.name, url: entry.url, license: entry.license, ...(labelSet ? { labelSet } : {}) },
    preprocessing: structuredClone(entry.preprocessing),
  };
  const parent = path.dirname(modelDir);
  const staging = path.join(parent, `.${path.basename(modelDir)}.staging-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  try {
    writeModelDir(staging, c.weights, meta, { fp16 });
    try {
      fs.renameSync(staging, modelDir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM') throw e;
      // Another process finished first: its model is as good as ours.
      if (fs.existsSync(path.join(modelDir, 'model.json'))) return;
      // A non-empty directory without model.json is not ours to keep using: move it aside, then retry.
      const trash = `${staging}.old`;
      fs.renameSync(modelDir, trash);
      fs.rmSync(trash, { recursive: true, force: true });
      fs.renameSync(staging, modelDir);
    }
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/** What to do when a zoo checkpoint cannot be downloaded. */
export function downloadRemedy(entry: ZooEntry, checkpoint: string): string {
  const rel = entry.url.startsWith(OFFICIAL_BASE_URL) ? entry.url.slice(OFFICIAL_BASE_URL.length) : entry.url;
  return (
    `Without access to it: download ${entry.url} elsewhere and place it at ${checkpoint} (the cache; CONVNEXT_CACHE or --cache-dir moves it), ` +
    `or set CONVNEXT_MIRROR=http://host/ to a server holding ${rel}, ` +
    `or convert a checkpoint you have: convnext convert <checkpoint.pth> <dir>, then --model <dir>`
  );
}

function offlineMissMessage(entry: ZooEntry, checkpoint: string, mirrorHint: string): string {
  return (
    `${entry.name} is not in the cache and offline mode is on (CONVNEXT_OFFLINE or { offline: true }). ` +
    `Run once with network access, or place the checkpoint (${entry.url}) at ${checkpoint}, ` +
    `or turn offline mode off and set CONVNEXT_MIRROR to a server holding ${mirrorHint}, ` +
    `or convert a checkpoint you have: convnext convert <checkpoint.pth> <dir>, then --model <dir>`
  );
}

/**
 * Makes a pretrained model available locally and returns its converted directory: from the cache
 * when converted already (no network), else converted from a cached checkpoint (no network), else
 * downloaded (unless offline), verified, and converted.
 *
 *   const { dir } = await resolvePretrained('convnext_tiny.fb_in1k', { onProgress: (p) => ... });
 *   const { model, meta } = await loadConvertedModel(dir);
 * @throws ZooError (unknown name, offline cache miss), DownloadError, CheckpointError
 */
export async function resolvePretrained(nameOrEntry: string | ZooEntry, opts: ResolveOptions = {}): Promise<ResolvedPretrained> {
  const env = opts.env ?? process.env;
  const entry = typeof nameOrEntry === 'string' ? getPretrained(nameOrEntry) : validateEntry(nameOrEntry);
  const { modelDir, checkpoint } = cachePaths(entry, { cacheDir: opts.cacheDir, fp16: opts.fp16, env });
  if (fs.existsSync(path.join(modelDir, 'model.json'))) return { dir: modelDir, entry, downloaded: false, converted: false };

  let downloaded = false;
  if (fs.existsSync(checkpoint)) {
    await verifyCached(entry, checkpoint);
  } else {
    const offline = opts.offline === true || settings.offline(env);
    if (offline)
      throw new ZooError(
        offlineMissMessage(entry, checkpoint, entry.url.startsWith(OFFICIAL_BASE_URL) ? entry.url.slice(OFFICIAL_BASE_URL.length) : entry.url),
      );
    const url = downloadUrl(entry, opts.mirror ?? settings.mirror(env));
    try {
      await download(url, checkpoint, {
        expectedSize: entry.sizeBytes,
        sha256: entry.sha256,
        onProgress: opts.onProgress,
        timeoutMs: opts.timeoutMs,
        fetchImpl: opts.fetchImpl,
      });
    } catch (e) {
      // Unreachable host, DNS failure, HTTP error: say what to do instead (the first hour offline).
      if (e instanceof DownloadError) throw new DownloadError(`${e.message}. ${downloadRemedy(entry, checkpoint)}`, e.url, e.status);
      throw e;
    }
    downloaded = true;
  }

  opts.onProgress?.({ status: 'convert', file: entry.file, name: entry.name });
  try {
    await convertInto(entry, checkpoint, modelDir, !!opts.fp16);
  } catch (e) {
    // A fresh download that does not convert is useless: drop it so the failure leaves no entry.
    if (downloaded) fs.rmSync(checkpoint, { force: true });
    else if (e instanceof Error && !(e instanceof ZooError)) e.message += ` (cached checkpoint: ${checkpoint}; delete it to download it again)`;
    throw e;
  }
  return { dir: modelDir, entry, downloaded, converted: true };
}
