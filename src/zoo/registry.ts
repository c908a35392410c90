/**
 * The pretrained-weights zoo as data, keyed by timm's `arch.tag` names (timm models/convnext.py
 * default_cfgs): where each official checkpoint lives, what it classifies, the eval preprocessing it
 * expects (timm pretrained_cfg, which matches FB's datasets.py) and its licence.
 *
 * A bare architecture name ('convnext_tiny') resolves to that architecture's default tag the way
 * timm's `pretrained=True` does: the first tag listed for it. The table below keeps timm's order
 * (leaving out timm's own, non-FB weights), so the defaults are fb_in22k_ft_in1k for V1 tiny..xlarge,
 * fcmae_ft_in22k_in1k for V2 nano..large, fcmae_ft_in22k_in1k_384 for V2 huge and fcmae_ft_in1k for
 * V2 atto/femto/pico. (timm itself lists its own in12k_ft_in1k weights first for convnext_tiny and
 * convnext_small; those are not FB files and are not in this zoo.)
 *
 *   listPretrained('convnext_tiny.*');   // ['convnext_tiny.fb_in22k_ft_in1k', 'convnext_tiny.fb_in1k', ...]
 *   getPretrained('convnextv2_tiny');    // the convnextv2_tiny.fcmae_ft_in22k_in1k entry
 */
import { ZooError } from '../errors';
import { PreprocessingInfo, evalPreprocessing } from '../model/preprocessing';
import { MODEL_CONFIGS } from '../model/configs';
import { editDistance, globToRegExp } from '../util/strings';

/** Class-name sets the inference layer bundles; a model's meta names the set instead of copying it. */
export type LabelSet = 'imagenet-1k' | 'imagenet-22k';

/** One pretrained checkpoint. */
export interface ZooEntry {
  /** timm-style `arch.tag`, e.g. 'convnext_tiny.fb_in1k'. */
  name: string;
  /** Registered architecture the checkpoint must be (checked on conversion); undefined = inferred (custom entries). */
  arch?: string;
  /** Official download URL. */
  url: string;
  /** Checkpoint file name in the cache (a plain file name, unique per URL). */
  file: string;
  /** Classifier outputs (1000, or 21841 for the ImageNet-22K heads); checked on conversion. */
  numClasses: number;
  /** Bundled class-name set, or explicit class names (custom entries); undefined = none. */
  labels?: LabelSet | string[];
  /** Eval preprocessing the weights expect. */
  preprocessing: PreprocessingInfo;
  /** Licence of the weights ('MIT' for FB ConvNeXt V1, 'CC-BY-NC-4.0' for ConvNeXt V2). */
  license: string;
  /** Exact checkpoint size in bytes, where known (verified on download). */
  sizeBytes?: number;
  /** Hex SHA-256 of the checkpoint, where known (verified on download). */
  sha256?: string;
}

const FB = 'https://dl.fbaipublicfiles.com/convnext/';
const FB2 = `${FB}convnextv2/`;
/** Base URL that CONVNEXT_MIRROR / the mirror option replaces. */
export const OFFICIAL_BASE_URL = 'https://dl.fbaipublicfiles.com/';

type Row = [name: string, url: string, inputSize: number, numClasses?: number];

// V1 (FB ConvNeXt, MIT), in timm's order; fb_in1k_384 (FB README, not in timm) last.
const V1_ROWS: Row[] = [
  ...['tiny', 'small', 'base', 'large'].map((s): Row => [`convnext_${s}.fb_in22k_ft_in1k`, `${FB}convnext_${s}_22k_1k_224.pth`, 224]),
  ['convnext_xlarge.fb_in22k_ft_in1k', `${FB}convnext_xlarge_22k_1k_224_ema.pth`, 224],
  ...['tiny', 'small', 'base', 'large'].map((s): Row => [`convnext_${s}.fb_in1k`, `${FB}convnext_${s}_1k_224_ema.pth`, 224]),
  ...['tiny', 'small', 'base', 'large'].map((s): Row => [`convnext_${s}.fb_in22k_ft_in1k_384`, `${FB}convnext_${s}_22k_1k_384.pth`, 384]),
  ['convnext_xlarge.fb_in22k_ft_in1k_384', `${FB}convnext_xlarge_22k_1k_384_ema.pth`, 384],
  ...['tiny', 'small', 'base', 'large', 'xlarge'].map((s): Row => [`convnext_${s}.fb_in22k`, `${FB}convnext_${s}_22k_224.pth`, 224, 21841]),
  ...['base', 'large'].map((s): Row => [`convnext_${s}.fb_in1k_384`, `${FB}convnext_${s}_1k_384.pth`, 384]),
];

// V2 (FB ConvNeXt-V2, CC-BY-NC-4.0), in timm's order. The "22k" models have 1000-class heads.
const V2_ROWS: Row[] = [
  ...['nano', 'tiny', 'base', 'large'].flatMap((s): Row[] => [
    [`convnextv2_${s}.fcmae_ft_in22k_in1k`, `${FB2}im22k/convnextv2_${s}_22k_224_ema.pt`, 224],
    [`convnextv2_${s}.fcmae_ft_in22k_in1k_384`, `${FB2}im22k/convnextv2_${s}_22k_384_ema.pt`, 384],
  ]),
  ['convnextv2_huge.fcmae_ft_in22k_in1k_384', `${FB2}im22k/convnextv2_huge_22k_384_ema.pt`, 384],
  ['convnextv2_huge.fcmae_ft_in22k_in1k_512', `${FB2}im22k/convnextv2_huge_22k_512_ema.pt`, 512],
  ...['atto', 'femto', 'pico', 'nano', 'tiny', 'base', 'large', 'huge'].map((s): Row => [
    `convnextv2_${s}.fcmae_ft_in1k`,
    `${FB2}im1k/convnextv2_${s}_1k_224_ema.pt`,
    224,
  ]),
  // FCMAE-pretrained encoders (no final norm, no head): numClasses-0 models, for embed and train --init.
  ...['atto', 'femto', 'pico', 'nano', 'tiny', 'base', 'large', 'huge'].map((s): Row => [
    `convnextv2_${s}.fcmae`,
    `${FB2}pt_only/convnextv2_${s}_1k_224_fcmae.pt`,
    224,
    0,
  ]),
];

function rowEntry([name, url, inputSize, numClasses = 1000]: Row, license: string): ZooEntry {
  return {
    name,
    arch: name.split('.')[0],
    url,
    file: url.slice(url.lastIndexOf('/') + 1),
    numClasses,
    labels: numClasses === 0 ? undefined : numClasses === 21841 ? 'imagenet-22k' : 'imagenet-1k',
    preprocessing: evalPreprocessing(inputSize),
    license,
    // sizeBytes / sha256: unknown offline; left undefined rather than guessed.
  };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

const BUILTIN: readonly ZooEntry[] = [...V1_ROWS.map((r) => rowEntry(r, 'MIT')), ...V2_ROWS.map((r) => rowEntry(r, 'CC-BY-NC-4.0'))].map(deepFreeze);

/** name -> entry; insertion order is the listing order (builtins first, then registered entries). */
const REGISTRY = new Map<string, ZooEntry>(BUILTIN.map((e) => [e.name, e]));
const BUILTIN_NAMES = new Set(BUILTIN.map((e) => e.name));

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9][A-Za-z0-9_-]*)+$/;
const FILE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Checks a (custom) entry's fields; returns a frozen copy. */
export function validateEntry(e: ZooEntry): ZooEntry {
  const bad = (why: string): never => {
    throw new ZooError(`zoo entry ${typeof e?.name === 'string' ? `'${e.name}'` : '<unnamed>'}: ${why}`);
  };
  if (!e || typeof e !== 'object') bad('not an object');
  if (typeof e.name !== 'string' || !NAME_RE.test(e.name)) bad(`name must be 'arch.tag' (letters, digits, _ and -), got ${JSON.stringify(e.name)}`);
  if (e.arch !== undefined && !(e.arch in MODEL_CONFIGS)) bad(`unknown arch '${e.arch}' (see listModels())`);
  if (typeof e.url !== 'string' || !/^https?:\/\/[^/]+\/./i.test(e.url)) bad(`url must be an http(s) URL of a file, got ${JSON.stringify(e.url)}`);
  if (typeof e.file !== 'string' || !FILE_RE.test(e.file) || e.file.includes('..')) bad(`file must be a plain file name, got ${JSON.stringify(e.file)}`);
  if (!Number.isInteger(e.numClasses) || e.numClasses < 0) bad(`numClasses must be a non-negative integer, got ${e.numClasses}`);
  if (e.labels !== undefined && e.labels !== 'imagenet-1k' && e.labels !== 'imagenet-22k') {
    if (!Array.isArray(e.labels) || !e.labels.every((l) => typeof l === 'string'))
      bad(`labels must be 'imagenet-1k', 'imagenet-22k' or an array of class names`);
    if ((e.labels as string[]).length !== e.numClasses) bad(`${(e.labels as string[]).length} labels for ${e.numClasses} classes`);
  }
  const p = e.preprocessing;
  if (
    !p ||
    !Number.isInteger(p.inputSize) ||
    p.inputSize <= 0 ||
    !(p.cropPct > 0 && p.cropPct <= 1) ||
    !Array.isArray(p.mean) ||
    p.mean.length !== 3 ||
    !Array.isArray(p.std) ||
    p.std.length !== 3
  ) {
    bad('preprocessing must give inputSize, cropPct in (0, 1], interpolation, mean[3] and std[3]');
  }
  if (typeof e.license !== 'string' || !e.license) bad('license is required');
  if (e.sizeBytes !== undefined && !(Number.isInteger(e.sizeBytes) && e.sizeBytes >= 0)) bad(`sizeBytes must be a non-negative integer, got ${e.sizeBytes}`);
  if (e.sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(e.sha256)) bad('sha256 must be 64 hex digits');
  return deepFreeze(structuredClone(e));
}

/**
 * Adds an entry to the zoo (private or fine-tuned weights, test fixtures). Built-in names cannot be
 * replaced; a registered custom name can with `{ replace: true }`.
 *
 *   registerPretrained({ name: 'convnext_tiny.my_birds', arch: 'convnext_tiny', url: 'https://example.org/birds.pth',
 *                        file: 'birds.pth', numClasses: 200, preprocessing, license: 'proprietary' });
 */
export function registerPretrained(entry: ZooEntry, opts: { replace?: boolean } = {}): ZooEntry {
  const e = validateEntry(entry);
  if (BUILTIN_NAMES.has(e.name)) throw new ZooError(`zoo entry '${e.name}' is built in and cannot be replaced`);
  if (REGISTRY.has(e.name) && !opts.replace) throw new ZooError(`zoo entry '${e.name}' is already registered (pass { replace: true } to replace it)`);
  for (const other of REGISTRY.values()) {
    if (other.name !== e.name && other.file === e.file && other.url !== e.url) {
      throw new ZooError(`zoo entry '${e.name}': file name ${e.file} is already used by '${other.name}' for another URL`);
    }
  }
  REGISTRY.set(e.name, e);
  return e;
}

/** Removes a custom entry (built-ins stay); returns whether one was removed. */
export function unregisterPretrained(name: string): boolean {
  if (BUILTIN_NAMES.has(name)) throw new ZooError(`zoo entry '${name}' is built in and cannot be removed`);
  return REGISTRY.delete(name);
}

/** Zoo names matching a glob filter (`*`, `?`, `[...]`), e.g. listPretrained('convnextv2_*.fcmae_ft_in1k'). */
export function listPretrained(filter = '*'): string[] {
  const re = globToRegExp(filter);
  return [...REGISTRY.keys()].filter((n) => re.test(n));
}

/** The default tag's full name for a bare architecture name (the first listed), or undefined. */
export function defaultPretrained(arch: string): string | undefined {
  for (const name of REGISTRY.keys()) if (name.split('.')[0] === arch) return name;
  return undefined;
}

/** True for a registered `arch.tag` name. Bare arch names are not zoo names (they also name random-weight models). */
export function isZooName(s: string): boolean {
  return typeof s === 'string' && s.includes('.') && REGISTRY.has(s);
}

/** Up to 5 registered names close to `name`: every tag of a known arch, else the nearest by edit distance. */
export function suggestPretrained(name: string): string[] {
  const arch = name.split('.')[0];
  const sameArch = listPretrained().filter((n) => n.split('.')[0] === arch);
  if (sameArch.length) return sameArch.slice(0, 8);
  const tag = name.includes('.') ? name.slice(name.indexOf('.') + 1) : '';
  return listPretrained()
    .map((n) => ({
      n,
      d: Math.min(editDistance(n, name), name.includes('.') ? Infinity : editDistance(n.split('.')[0], name)) + (tag && n.endsWith(`.${tag}`) ? -2 : 0),
    }))
    .filter((x) => x.d <= Math.max(3, Math.floor(name.length / 4)))
    .sort((a, b) => a.d - b.d)
    .slice(0, 5)
    .map((x) => x.n);
}

/**
 * The entry of a zoo name; a bare architecture name gives its default tag (timm's rule).
 *
 *   getPretrained('convnext_tiny.fb_in1k').url;   // https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224_ema.pth
 *   getPretrained('convnext_tiny').name;          // 'convnext_tiny.fb_in22k_ft_in1k'
 * @throws ZooError for an unknown name, with suggestions
 */
export function getPretrained(name: string): ZooEntry {
  const e = REGISTRY.get(name) ?? (typeof name === 'string' && !name.includes('.') ? REGISTRY.get(defaultPretrained(name) ?? '') : undefined);
  if (e) return e;
  const near = typeof name === 'string' ? suggestPretrained(name) : [];
  throw new ZooError(`no pretrained weights named '${name}'` + (near.length ? ` (did you mean ${near.join(', ')}?)` : '; see listPretrained()'));
}
