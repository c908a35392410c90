/**
 * RandAugment (Cubuk et al. 2020, "RandAugment: Practical automated data augmentation with a reduced
 * search space") as timm runs it (timm/data/auto_augment.py, rand_augment_transform), on uint8 RGB:
 * per image, `n` ops drawn uniformly with replacement from timm's list; each is applied with
 * probability `p` at magnitude `m` on timm's 0-10 scale, optionally with Gaussian noise of std `mstd`
 * (uniform in [0, m] when mstd > 100) and clipped to [0, mmax] (default 10). `inc1` selects timm's
 * "increasing" set (PosterizeIncreasing, SolarizeIncreasing, ColorIncreasing, ...), whose severity
 * grows with the magnitude. timm's train.py fills with the ImageNet mean (124, 116, 104) and, with its
 * default --train-interpolation random, picks bilinear or bicubic per geometric op; so do we. The pixel
 * ops are Pillow's (image_ops.ts); randomness comes from the sample's seeded generator.
 *
 * Also the parser of the `autoAugment` option (timm's --aa): 'none', 'trivial' or a config string
 * rand-m{magnitude}-n{num_ops}-mstd{std}-mmax{max}-inc{0|1}-p{prob}, sections in any order, each
 * optional (timm's defaults: m10 n2 mstd0 mmax10 inc0 p0.5). Unlike timm, 'inc0' means off (timm
 * reads any inc value as on) and an unknown section is refused instead of skipped or asserted.
 */
import { RgbImage } from '../data/image';
import { ConfigError, TrainOptionError } from '../errors';
import { IMAGENET_MEAN } from '../model/preprocessing';
import {
  AffineResample,
  Fill,
  affineTransform,
  autocontrast,
  brightness,
  color,
  contrast,
  equalize,
  invert,
  posterize,
  rotate,
  sharpness,
  solarize,
  solarizeAdd,
} from './image_ops';
import type { Rng } from './random';
import { standardNormal, uniform } from './random';

export interface RandAugmentPolicy {
  kind: 'rand';
  /** Magnitude on timm's 0-10 scale (section m). */
  magnitude: number;
  /** Ops applied per image (section n). */
  numOps: number;
  /** Std of the Gaussian noise on the magnitude; Infinity: uniform in [0, magnitude] (section mstd). */
  magnitudeStd: number;
  /** Upper clip of the (noisy) magnitude (section mmax). */
  magnitudeMax: number;
  /** timm's increasing op set (section inc1). */
  increasing: boolean;
  /** Probability of applying each drawn op (section p). */
  prob: number;
  /** The op names drawn from. */
  ops: readonly string[];
}

export type AutoAugmentPolicy = { kind: 'none' } | { kind: 'trivial' } | RandAugmentPolicy;

/** timm's _RAND_TRANSFORMS (Cutout is timm's separate random erasing). */
export const RAND_AUGMENT_OPS: readonly string[] = Object.freeze([
  'AutoContrast',
  'Equalize',
  'Invert',
  'Rotate',
  'Posterize',
  'Solarize',
  'SolarizeAdd',
  'Color',
  'Contrast',
  'Brightness',
  'Sharpness',
  'ShearX',
  'ShearY',
  'TranslateXRel',
  'TranslateYRel',
]);

/** timm's _RAND_INCREASING_TRANSFORMS: the same list with the increasing variants. */
export const RAND_AUGMENT_INCREASING_OPS: readonly string[] = Object.freeze(
  RAND_AUGMENT_OPS.map((n) => (/^(Posterize|Solarize|Color|Contrast|Brightness|Sharpness)$/.test(n) ? `${n}Increasing` : n)),
);

/** timm's _LEVEL_DENOM: magnitude 10 is an op's full strength. */
const LEVEL_DENOM = 10;
/** timm's translate_pct for RandAugment: at most 45% of the side. */
const TRANSLATE_PCT = 0.45;
/** timm's img_mean hparam: the ImageNet mean as bytes, round(255 x mean). */
const FILL: Fill = IMAGENET_MEAN.map((m) => Math.min(255, Math.round(255 * m))) as unknown as Fill;

export const AUTO_AUGMENT_FORMS =
  "'none', 'trivial' or rand-m{magnitude}[-n{num_ops}][-mstd{std}][-mmax{max}][-inc{0|1}][-p{prob}] (e.g. rand-m9-mstd0.5-inc1)";

function refuse(policy: string, problem: string): never {
  throw new TrainOptionError('autoAugment', `autoAugment must be ${AUTO_AUGMENT_FORMS}; got ${JSON.stringify(policy)}: ${problem}`);
}

/** timm's train.py default (--aa None): no automatic augmentation unless asked. */
export const DEFAULT_AUTO_AUGMENT = 'none';

/** autoAugment, else the deprecated trivialAugment's meaning (true: 'trivial', false: 'none'), else the default. */
export function resolveAutoAugment(o: { autoAugment?: string; trivialAugment?: boolean }): string {
  return o.autoAugment ?? (o.trivialAugment === undefined ? DEFAULT_AUTO_AUGMENT : o.trivialAugment ? 'trivial' : 'none');
}

const parsed = new Map<string, AutoAugmentPolicy>();

/** The policy a string names; throws TrainOptionError('autoAugment') listing the valid forms. Memoised. */
export function parseAutoAugment(policy: string): AutoAugmentPolicy {
  const known = parsed.get(policy);
  if (known) return known;
  let p: AutoAugmentPolicy;
  if (typeof policy !== 'string') refuse(String(policy), 'not a string');
  if (policy === 'none' || policy === 'trivial') p = { kind: policy };
  else {
    const [head, ...sections] = policy.split('-');
    if (head !== 'rand') refuse(policy, `unknown policy '${head}'`);
    const r: RandAugmentPolicy = {
      kind: 'rand',
      magnitude: LEVEL_DENOM,
      numOps: 2,
      magnitudeStd: 0,
      magnitudeMax: LEVEL_DENOM,
      increasing: false,
      prob: 0.5,
      ops: [],
    };
    const seen = new Set<string>();
    for (const s of sections) {
      const m = /^([a-z]*)(\d.*)$/.exec(s);
      if (!m)
        refuse(
          policy,
          s === ''
            ? 'an empty section'
            : s.startsWith('t')
              ? `transform sets ('${s}') are not supported`
              : /^[a-z]+$/.test(s)
                ? `section '${s}' has no value`
                : `unknown section '${s}'`,
        );
      const [, key, val] = m;
      if (seen.has(key)) refuse(policy, `section '${key}' given twice`);
      seen.add(key);
      const int = /^\d+$/.test(val) ? Number(val) : NaN;
      const num = /^\d+(\.\d*)?$/.test(val) ? Number(val) : NaN;
      if (key === 'm') r.magnitude = Number.isInteger(int) ? int : refuse(policy, `m must be an integer magnitude, got '${val}'`);
      else if (key === 'n') r.numOps = int >= 1 ? int : refuse(policy, `n must be a positive integer, got '${val}'`);
      else if (key === 'mstd') r.magnitudeStd = num >= 0 ? (num > 100 ? Infinity : num) : refuse(policy, `mstd must be a number >= 0, got '${val}'`);
      else if (key === 'mmax') r.magnitudeMax = int >= 1 ? int : refuse(policy, `mmax must be a positive integer, got '${val}'`);
      else if (key === 'inc') r.increasing = val === '1' ? true : val === '0' ? false : refuse(policy, `inc must be 0 or 1, got '${val}'`);
      else if (key === 'p') r.prob = num >= 0 && num <= 1 ? num : refuse(policy, `p must be in [0, 1], got '${val}'`);
      else refuse(policy, `unknown section '${s}'`);
    }
    r.ops = r.increasing ? RAND_AUGMENT_INCREASING_OPS : RAND_AUGMENT_OPS;
    p = r;
  }
  parsed.set(policy, p);
  return p;
}

/** The magnitude one op application uses: noisy when magnitudeStd > 0, clipped to [0, magnitudeMax]. */
export function sampleMagnitude(p: RandAugmentPolicy, rng: Rng): number {
  let m = p.magnitude;
  if (p.magnitudeStd === Infinity) m = uniform(rng, 0, m);
  else if (p.magnitudeStd > 0) m = m + p.magnitudeStd * standardNormal(rng);
  return Math.max(0, Math.min(m, p.magnitudeMax));
}

/** timm's _randomly_negate: the value negated with probability 1/2. */
const negate = (v: number, rng: Rng) => (rng() > 0.5 ? -v : v);
const enhance = (m: number) => (m / LEVEL_DENOM) * 1.8 + 0.1;
const enhanceIncreasing = (m: number, rng: Rng) => Math.max(0.1, 1 + negate((m / LEVEL_DENOM) * 0.9, rng));
const posterizeBits = (m: number) => Math.trunc((m / LEVEL_DENOM) * 4);
const solarizeThreshold = (m: number) => Math.min(256, Math.trunc((m / LEVEL_DENOM) * 256));

interface RandOp {
  /** timm's LEVEL_TO_ARG: the op's argument at magnitude m (may draw a sign); absent: no argument. */
  arg?: (m: number, rng: Rng) => number;
  /** Geometric ops take the resampling filter and the fill. */
  apply: (img: RgbImage, arg: number, resample: AffineResample) => RgbImage;
  geometric?: boolean;
}

const OPS: Record<string, RandOp> = {
  AutoContrast: { apply: (img) => autocontrast(img) },
  Equalize: { apply: (img) => equalize(img) },
  Invert: { apply: (img) => invert(img) },
  Rotate: { arg: (m, rng) => negate((m / LEVEL_DENOM) * 30, rng), apply: (img, deg, r) => rotate(img, deg, r, FILL), geometric: true },
  Posterize: { arg: posterizeBits, apply: posterize },
  PosterizeIncreasing: { arg: (m) => 4 - posterizeBits(m), apply: posterize },
  Solarize: { arg: solarizeThreshold, apply: solarize },
  SolarizeIncreasing: { arg: (m) => 256 - solarizeThreshold(m), apply: solarize },
  SolarizeAdd: { arg: (m) => Math.min(128, Math.trunc((m / LEVEL_DENOM) * 110)), apply: (img, add) => solarizeAdd(img, add) },
  Color: { arg: enhance, apply: color },
  ColorIncreasing: { arg: enhanceIncreasing, apply: color },
  Contrast: { arg: enhance, apply: contrast },
  ContrastIncreasing: { arg: enhanceIncreasing, apply: contrast },
  Brightness: { arg: enhance, apply: brightness },
  BrightnessIncreasing: { arg: enhanceIncreasing, apply: brightness },
  Sharpness: { arg: enhance, apply: sharpness },
  SharpnessIncreasing: { arg: enhanceIncreasing, apply: sharpness },
  ShearX: { arg: (m, rng) => negate((m / LEVEL_DENOM) * 0.3, rng), apply: (img, f, r) => affineTransform(img, [1, f, 0, 0, 1, 0], r, FILL), geometric: true },
  ShearY: { arg: (m, rng) => negate((m / LEVEL_DENOM) * 0.3, rng), apply: (img, f, r) => affineTransform(img, [1, 0, 0, f, 1, 0], r, FILL), geometric: true },
  TranslateXRel: {
    arg: (m, rng) => negate((m / LEVEL_DENOM) * TRANSLATE_PCT, rng),
    apply: (img, pct, r) => affineTransform(img, [1, 0, pct * img.width, 0, 1, 0], r, FILL),
    geometric: true,
  },
  TranslateYRel: {
    arg: (m, rng) => negate((m / LEVEL_DENOM) * TRANSLATE_PCT, rng),
    apply: (img, pct, r) => affineTransform(img, [1, 0, 0, 0, 1, pct * img.height], r, FILL),
    geometric: true,
  },
};

function opOf(name: string): RandOp {
  const op = OPS[name];
  if (!op) throw new ConfigError(`unknown RandAugment op '${name}' (ops: ${Object.keys(OPS).join(', ')})`);
  return op;
}

/** timm's argument of op `name` at magnitude m (a rotation in degrees, bits kept, a factor, a shift fraction...). */
export function randAugmentArg(name: string, magnitude: number, rng: Rng): number {
  return opOf(name).arg?.(magnitude, rng) ?? 0;
}

/** One op applied at its argument (randAugmentArg); the filter matters for the geometric ops only. */
export function applyRandAugmentOp(img: RgbImage, name: string, arg: number, resample: AffineResample = 'bicubic'): RgbImage {
  return opOf(name).apply(img, arg, resample);
}

/** RandAugment on one image: numOps ops drawn with replacement, each applied with probability prob. */
export function randAugment(img: RgbImage, rng: Rng, p: RandAugmentPolicy): RgbImage {
  const chosen = Array.from({ length: p.numOps }, () => p.ops[Math.floor(rng() * p.ops.length)]);
  let out = img;
  for (const name of chosen) {
    if (p.prob < 1 && rng() > p.prob) continue;
    const op = OPS[name];
    const arg = op.arg ? op.arg(sampleMagnitude(p, rng), rng) : 0;
    out = op.apply(out, arg, op.geometric && rng() < 0.5 ? 'bilinear' : 'bicubic');
  }
  return out;
}

/** The fill colour of the geometric ops (timm's img_mean). */
export const RAND_AUGMENT_FILL: Fill = FILL;
