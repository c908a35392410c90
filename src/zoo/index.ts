/**
 * The pretrained-model zoo: a registry keyed by timm names (registry.ts), verified atomic downloads
 * (download.ts) and a cache of converted models (cache.ts).
 * Models are loaded through loadModel (src/factory), which resolves tags here.
 */

export {
  LabelSet,
  OFFICIAL_BASE_URL,
  ZooEntry,
  defaultPretrained,
  getPretrained,
  isZooName,
  listPretrained,
  registerPretrained,
  suggestPretrained,
  unregisterPretrained,
  validateEntry,
} from './registry';
export { DEFAULT_TIMEOUT_MS, DownloadOptions, DownloadProgress, DownloadResult, download } from './download';
export { ResolveOptions, ResolvedPretrained, ZooProgress, cachePaths, cacheState, defaultCacheDir, downloadUrl, resolvePretrained } from './cache';
