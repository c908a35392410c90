/**
 * The pretrained-model zoo: a registry keyed by timm names (registry.ts), verified atomic downloads
 * (download.ts) and a cache of converted models (cache.ts).
 *
 *   const { model, meta, entry } = await loadPretrained('convnext_tiny.fb_in1k');
 */
import { LoadedModel, loadConvertedModel } from '../io/model_dir';
import { ResolveOptions, resolvePretrained } from './cache';
import { ZooEntry } from './registry';

export { LabelSet, OFFICIAL_BASE_URL, ZooEntry, defaultPretrained, getPretrained, isZooName, listPretrained, registerPretrained, suggestPretrained, unregisterPretrained, validateEntry } from './registry';
export { ZooError } from '../errors';
export { DEFAULT_TIMEOUT_MS, DownloadOptions, DownloadProgress, DownloadResult, download } from './download';
export { DownloadError } from '../errors';
export { ResolveOptions, ResolvedPretrained, ZooProgress, cachePaths, cacheState, defaultCacheDir, downloadUrl, resolvePretrained } from './cache';

/**
 * Resolves a zoo name (downloading and converting on first use) and loads the model.
 *
 *   const { model, meta } = await loadPretrained('convnextv2_tiny', { onProgress });
 */
export async function loadPretrained(nameOrEntry: string | ZooEntry, opts: ResolveOptions = {}): Promise<LoadedModel & { entry: ZooEntry; dir: string }> {
  const { dir, entry } = await resolvePretrained(nameOrEntry, opts);
  const loaded = await loadConvertedModel(dir);
  return { ...loaded, entry, dir };
}
