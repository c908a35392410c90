/**
 * The ConvNeXt family as data (timm models/convnext.py names). V1: Liu et al. 2022 (atto..nano are
 * timm's small V1 variants); V2: Woo et al. 2023 (FB2 models/convnextv2.py). A custom config is the
 * same record with other numbers.
 */
import { ConfigError } from '../errors';
import { editDistance, globToRegExp } from '../util/strings';

export type ConvNeXtVersion = 1 | 2;

/** Everything that defines a ConvNeXt's architecture. */
export interface ConvNeXtConfig {
  /** Registry name (e.g. 'convnext_tiny'), or a free name for custom configs. */
  name: string;
  version: ConvNeXtVersion;
  /** Blocks per stage, four stages. */
  depths: [number, number, number, number];
  /** Channels per stage. */
  dims: [number, number, number, number];
  /** Classifier outputs; 0 = no classifier (forward returns the pooled pre-logits). */
  numClasses: number;
  /** Input channels (3 for RGB). */
  inChannels: number;
  /** Stem patch size (4). */
  patchSize: number;
  /** Depthwise kernel size (7). */
  kernelSize: number;
  /** MLP expansion ratio (4). */
  mlpRatio: number;
  /** Layer-scale init value (V1: 1e-6); null = no layer scale (V2). */
  layerScaleInit: number | null;
  /** GRN in every block (V2). */
  useGrn: boolean;
  /** eps of the stem, downsample and block LayerNorms (1e-6). */
  lnEps: number;
  /** eps of the final (pooled) LayerNorm: 1e-6, except HF checkpoints (config.layer_norm_eps, default 1e-12). */
  headNormEps: number;
  /** Stochastic-depth rate of the last block (training only). */
  dropPathRate: number;
}

/** Options accepted on top of a registry name. */
export type ConfigOverrides = Partial<Omit<ConvNeXtConfig, 'name' | 'version'>>;

type Arch = Pick<ConvNeXtConfig, 'depths' | 'dims'>;

const V1: Record<string, Arch> = {
  convnext_atto: { depths: [2, 2, 6, 2], dims: [40, 80, 160, 320] },
  convnext_femto: { depths: [2, 2, 6, 2], dims: [48, 96, 192, 384] },
  convnext_pico: { depths: [2, 2, 6, 2], dims: [64, 128, 256, 512] },
  convnext_nano: { depths: [2, 2, 8, 2], dims: [80, 160, 320, 640] },
  convnext_tiny: { depths: [3, 3, 9, 3], dims: [96, 192, 384, 768] },
  convnext_small: { depths: [3, 3, 27, 3], dims: [96, 192, 384, 768] },
  convnext_base: { depths: [3, 3, 27, 3], dims: [128, 256, 512, 1024] },
  convnext_large: { depths: [3, 3, 27, 3], dims: [192, 384, 768, 1536] },
  convnext_xlarge: { depths: [3, 3, 27, 3], dims: [256, 512, 1024, 2048] },
};

const V2: Record<string, Arch> = {
  convnextv2_atto: { depths: [2, 2, 6, 2], dims: [40, 80, 160, 320] },
  convnextv2_femto: { depths: [2, 2, 6, 2], dims: [48, 96, 192, 384] },
  convnextv2_pico: { depths: [2, 2, 6, 2], dims: [64, 128, 256, 512] },
  convnextv2_nano: { depths: [2, 2, 8, 2], dims: [80, 160, 320, 640] },
  convnextv2_tiny: { depths: [3, 3, 9, 3], dims: [96, 192, 384, 768] },
  convnextv2_base: { depths: [3, 3, 27, 3], dims: [128, 256, 512, 1024] },
  convnextv2_large: { depths: [3, 3, 27, 3], dims: [192, 384, 768, 1536] },
  convnextv2_huge: { depths: [3, 3, 27, 3], dims: [352, 704, 1408, 2816] },
};

const COMMON = {
  numClasses: 1000,
  inChannels: 3,
  patchSize: 4,
  kernelSize: 7,
  mlpRatio: 4,
  lnEps: 1e-6,
  headNormEps: 1e-6,
  dropPathRate: 0,
} as const;

/** Base config of a V1 (layer scale, no GRN) or V2 (GRN, no layer scale) model. */
export function baseConfig(version: ConvNeXtVersion, name: string, arch: Arch): ConvNeXtConfig {
  return {
    name,
    version,
    depths: [...arch.depths] as ConvNeXtConfig['depths'],
    dims: [...arch.dims] as ConvNeXtConfig['dims'],
    ...COMMON,
    layerScaleInit: version === 1 ? 1e-6 : null,
    useGrn: version === 2,
  };
}

/** Every registered architecture, V1 then V2, smallest first. */
export const MODEL_CONFIGS: Readonly<Record<string, Readonly<ConvNeXtConfig>>> = Object.freeze(
  Object.fromEntries([
    ...Object.entries(V1).map(([n, a]) => [n, baseConfig(1, n, a)] as const),
    ...Object.entries(V2).map(([n, a]) => [n, baseConfig(2, n, a)] as const),
  ]),
);

/** Registered names matching a glob filter (`*`, `?`, `[...]`), e.g. listModels('convnextv2_*'). */
export function listModels(filter = '*'): string[] {
  const re = globToRegExp(filter);
  return Object.keys(MODEL_CONFIGS).filter((n) => re.test(n));
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

/** Checks a config and throws a ConfigError naming the bad field. */
export function validateConfig(c: ConvNeXtConfig): ConvNeXtConfig {
  const bad = (field: string, why: string): never => {
    throw new ConfigError(`config ${c.name}: ${field} ${why}`);
  };
  if (c.version !== 1 && c.version !== 2) bad('version', `must be 1 or 2, got ${String(c.version)}`);
  for (const key of ['depths', 'dims'] as const) {
    const v = c[key];
    if (!Array.isArray(v) || v.length !== 4 || !v.every(isPositiveInt)) {
      bad(key, `must be four positive integers, got ${JSON.stringify(v)}`);
    }
  }
  if (!(Number.isInteger(c.numClasses) && c.numClasses >= 0)) bad('numClasses', `must be an integer >= 0, got ${c.numClasses}`);
  for (const key of ['inChannels', 'patchSize', 'kernelSize', 'mlpRatio'] as const) {
    if (!isPositiveInt(c[key])) bad(key, `must be a positive integer, got ${String(c[key])}`);
  }
  if (c.kernelSize % 2 !== 1) bad('kernelSize', `must be odd, got ${c.kernelSize}`);
  for (const key of ['lnEps', 'headNormEps'] as const) {
    if (!(c[key] > 0 && c[key] < 1)) bad(key, `must be in (0, 1), got ${c[key]}`);
  }
  if (!(c.dropPathRate >= 0 && c.dropPathRate < 1)) bad('dropPathRate', `must be in [0, 1), got ${c.dropPathRate}`);
  if (c.layerScaleInit !== null && !(c.layerScaleInit >= 0)) bad('layerScaleInit', `must be >= 0 or null, got ${c.layerScaleInit}`);
  return c;
}

/**
 * Resolves a registry name (with overrides) or a full/partial custom config into a validated config.
 * A custom config needs at least version, depths and dims.
 */
export function resolveConfig(
  nameOrConfig: string | (ConfigOverrides & Pick<ConvNeXtConfig, 'version' | 'depths' | 'dims'> & { name?: string }),
  overrides: ConfigOverrides = {},
): ConvNeXtConfig {
  if (typeof nameOrConfig === 'string') {
    const base = MODEL_CONFIGS[nameOrConfig];
    if (!base) {
      const near = Object.keys(MODEL_CONFIGS).filter((n) => editDistance(n, nameOrConfig) <= 2);
      throw new ConfigError(`unknown model '${nameOrConfig}'` + (near.length ? ` (did you mean ${near.join(', ')}?)` : `; see listModels()`));
    }
    return validateConfig({ ...base, depths: [...base.depths], dims: [...base.dims], ...stripUndefined(overrides) } as ConvNeXtConfig);
  }
  const version = nameOrConfig.version;
  const base = baseConfig(version, nameOrConfig.name ?? `convnext${version === 2 ? 'v2' : ''}_custom`, nameOrConfig);
  return validateConfig({ ...base, ...stripUndefined(nameOrConfig), ...stripUndefined(overrides) } as ConvNeXtConfig);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Channels and stride of each stage's output (timm feature_info). */
export interface FeatureInfo {
  stage: number;
  numChs: number;
  reduction: number;
  module: string;
}

export function featureInfo(c: ConvNeXtConfig): FeatureInfo[] {
  return c.dims.map((d, i) => ({ stage: i, numChs: d, reduction: c.patchSize * 2 ** i, module: `stages.${i}` }));
}

/** Number of parameters, computed from the config alone (no tensors allocated). */
export function countParams(c: ConvNeXtConfig): number {
  const [d0] = c.dims;
  let n = c.patchSize * c.patchSize * c.inChannels * d0 + d0 + 2 * d0; // stem conv + LN
  c.dims.forEach((d, i) => {
    if (i > 0) n += 2 * c.dims[i - 1] + 4 * c.dims[i - 1] * d + d; // downsample LN + conv 2x2
    const h = c.mlpRatio * d;
    const block =
      c.kernelSize * c.kernelSize * d +
      d + // dwconv
      2 * d + // LN
      d * h +
      h +
      h * d +
      d + // fc1, fc2
      (c.useGrn ? 2 * h : 0) +
      (c.layerScaleInit ? d : 0);
    n += c.depths[i] * block;
  });
  const dl = c.dims[3];
  n += 2 * dl; // final LN
  if (c.numClasses > 0) n += dl * c.numClasses + c.numClasses;
  return n;
}

/**
 * Multiply-accumulates of the convolutions and Linears for one image of size h x w (what fvcore and
 * the papers report as "FLOPs"; ConvNeXt-T at 224: 4.46 G). Norms and activations are not counted.
 */
export function countMacs(c: ConvNeXtConfig, h = 224, w = 224): number {
  let hh = Math.floor(h / c.patchSize);
  let ww = Math.floor(w / c.patchSize);
  let macs = hh * ww * c.dims[0] * c.inChannels * c.patchSize * c.patchSize;
  c.dims.forEach((d, i) => {
    if (i > 0) {
      hh = Math.floor(hh / 2);
      ww = Math.floor(ww / 2);
      macs += hh * ww * d * c.dims[i - 1] * 4;
    }
    const hw = hh * ww;
    macs += c.depths[i] * hw * (c.kernelSize * c.kernelSize * d + 2 * d * c.mlpRatio * d);
  });
  if (c.numClasses > 0) macs += c.dims[3] * c.numClasses;
  return macs;
}
