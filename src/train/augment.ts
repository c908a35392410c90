/**
 * Training augmentations on 8-bit RGB images (HWC), torchvision / timm semantics:
 *   RandomResizedCrop(scale, ratio; default (0.08, 1), (3/4, 4/3)) with Pillow-exact bicubic resampling,
 *   RandomHorizontalFlip(0.5), then the automatic augmentation named by `autoAugment` as timm's
 *   --aa: 'none' (timm's default), 'trivial' (TrivialAugmentWide: one random op at a random magnitude
 *   of 31 bins) or a RandAugment string such as 'rand-m9-mstd0.5-inc1' (rand_augment.ts),
 * and Mixup / CutMix on normalised tensors with soft targets (timm Mixup: one draw per batch; the
 * partner of a sample is given by the caller).
 * Randomness comes from a caller's seeded generator, so epochs are reproducible. The pixel ops are
 * Pillow's (image_ops.ts).
 */
import { RgbImage, remapPixels } from '../data/image';
import { resize } from '../data/resize';
import { affineNearestCentred as affine, autocontrast, brightness, color, contrast, equalize, posterize, sharpness, solarize } from './image_ops';
import { parseAutoAugment, randAugment, resolveAutoAugment } from './rand_augment';
import { Rng, randint, standardNormal, uniform } from './random';

export type { Rng } from './random';

/** torchvision RandomResizedCrop's default area fraction range (scale) and aspect ratio range. */
export const RRC_SCALE: readonly [number, number] = Object.freeze([0.08, 1] as [number, number]);
export const RRC_RATIO: readonly [number, number] = Object.freeze([3 / 4, 4 / 3] as [number, number]);

/** torchvision RandomResizedCrop.get_params: [top, left, height, width]. */
export function randomResizedCropParams(
  w: number,
  h: number,
  rng: Rng,
  scale: readonly [number, number] = RRC_SCALE,
  ratio: readonly [number, number] = RRC_RATIO,
): [number, number, number, number] {
  const area = w * h;
  const logR = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let i = 0; i < 10; i++) {
    const target = area * uniform(rng, scale[0], scale[1]);
    const ar = Math.exp(uniform(rng, logR[0], logR[1]));
    const cw = Math.round(Math.sqrt(target * ar));
    const ch = Math.round(Math.sqrt(target / ar));
    if (cw > 0 && cw <= w && ch > 0 && ch <= h) return [randint(rng, 0, h - ch), randint(rng, 0, w - cw), ch, cw];
  }
  // Fallback: centre crop at the clamped ratio.
  const inRatio = w / h;
  let cw = w;
  let ch = h;
  if (inRatio < ratio[0]) ch = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) cw = Math.round(h * ratio[1]);
  return [Math.floor((h - ch) / 2), Math.floor((w - cw) / 2), ch, cw];
}

export function randomResizedCrop(img: RgbImage, size: number, rng: Rng, scale?: readonly [number, number], ratio?: readonly [number, number]): RgbImage {
  const [top, left, ch, cw] = randomResizedCropParams(img.width, img.height, rng, scale, ratio);
  return resize(img, size, size, { interpolation: 'bicubic', box: [left, top, left + cw, top + ch] });
}

export function flipHorizontal(img: RgbImage): RgbImage {
  const { width: w, height: h } = img;
  return remapPixels(img, w, h, (x, y) => y * w + (w - 1 - x));
}

/** The ops and magnitude ranges of torchvision's TrivialAugmentWide (31 bins). */
const TRIVIAL_OPS: { name: string; max: number; signed: boolean; apply: (img: RgbImage, mag: number) => RgbImage }[] = [
  { name: 'Identity', max: 0, signed: false, apply: (img) => img },
  { name: 'ShearX', max: 0.99, signed: true, apply: (img, m) => affine(img, [1, m, 0, 0, 1, 0]) },
  { name: 'ShearY', max: 0.99, signed: true, apply: (img, m) => affine(img, [1, 0, 0, m, 1, 0]) },
  { name: 'TranslateX', max: 32, signed: true, apply: (img, m) => affine(img, [1, 0, -m, 0, 1, 0]) },
  { name: 'TranslateY', max: 32, signed: true, apply: (img, m) => affine(img, [1, 0, 0, 0, 1, -m]) },
  {
    name: 'Rotate',
    max: 135,
    signed: true,
    apply: (img, deg) => {
      const r = (deg * Math.PI) / 180;
      return affine(img, [Math.cos(r), Math.sin(r), 0, -Math.sin(r), Math.cos(r), 0]);
    },
  },
  { name: 'Brightness', max: 0.99, signed: true, apply: (img, m) => brightness(img, 1 + m) },
  { name: 'Color', max: 0.99, signed: true, apply: (img, m) => color(img, 1 + m) },
  { name: 'Contrast', max: 0.99, signed: true, apply: (img, m) => contrast(img, 1 + m) },
  { name: 'Sharpness', max: 0.99, signed: true, apply: (img, m) => sharpness(img, 1 + m) },
  // torchvision: 8 - round(bin * 6 / 30) bits kept
  { name: 'Posterize', max: 6, signed: false, apply: (img, m) => posterize(img, 8 - Math.round(m)) },
  { name: 'Solarize', max: 255, signed: false, apply: (img, m) => solarize(img, 255 - m) },
  { name: 'AutoContrast', max: 0, signed: false, apply: (img) => autocontrast(img) },
  { name: 'Equalize', max: 0, signed: false, apply: (img) => equalize(img) },
];

export const TRIVIAL_AUGMENT_OPS = TRIVIAL_OPS.map((o) => o.name);

/** TrivialAugmentWide: one uniformly chosen op at a uniformly chosen magnitude bin (of 31), random sign. */
export function trivialAugment(img: RgbImage, rng: Rng): RgbImage {
  const op = TRIVIAL_OPS[Math.floor(rng() * TRIVIAL_OPS.length)];
  const bin = Math.floor(rng() * 31);
  let mag = (op.max * bin) / 30;
  if (op.signed && rng() < 0.5) mag = -mag;
  return op.apply(img, mag);
}

export interface TrainTransformOptions {
  size: number;
  /** RandomResizedCrop's area fraction range (default RRC_SCALE, 0.08-1). */
  scale?: readonly [number, number];
  /** RandomResizedCrop's aspect ratio range (default RRC_RATIO, 3/4-4/3). */
  ratio?: readonly [number, number];
  hflip?: number;
  /** 'none' (default), 'trivial' or a RandAugment config string (parseAutoAugment). */
  autoAugment?: string;
  /** @deprecated use autoAugment: true means 'trivial', false 'none' (read only when autoAugment is absent). */
  trivialAugment?: boolean;
}

/** RandomResizedCrop -> flip -> the automatic augmentation, on uint8 RGB (normalisation comes after). */
export function trainTransform(img: RgbImage, rng: Rng, o: TrainTransformOptions): RgbImage {
  let out = randomResizedCrop(img, o.size, rng, o.scale, o.ratio);
  if (rng() < (o.hflip ?? 0.5)) out = flipHorizontal(out);
  const policy = parseAutoAugment(resolveAutoAugment(o));
  if (policy.kind === 'trivial') out = trivialAugment(out, rng);
  else if (policy.kind === 'rand') out = randAugment(out, rng, policy);
  return out;
}

/** One Mixup or CutMix draw: lambda (corrected to the box area for CutMix) and the CutMix box. */
export interface MixDraw {
  lam: number;
  /** CutMix box [y0, y1, x0, x1) pasted from the partner; null for Mixup. */
  box: [number, number, number, number] | null;
}

export interface MixOptions {
  mixupAlpha?: number;
  cutmixAlpha?: number;
  switchProb?: number;
}

/**
 * Draws one Mixup (lambda ~ Beta(a, a)) or CutMix (a box of area 1 - lambda, timm rand_bbox) for an
 * h x w batch; null when both are off.
 */
export function drawMix(rng: Rng, h: number, w: number, o: MixOptions): MixDraw | null {
  const useCutmix = (o.cutmixAlpha ?? 0) > 0 && ((o.mixupAlpha ?? 0) <= 0 || rng() < (o.switchProb ?? 0.5));
  const alpha = useCutmix ? o.cutmixAlpha! : (o.mixupAlpha ?? 0);
  if (alpha <= 0) return null;
  const lam = sampleBeta(alpha, rng);
  if (!useCutmix) return { lam, box: null };
  const cutRatio = Math.sqrt(1 - lam);
  const ch = Math.floor(h * cutRatio);
  const cw = Math.floor(w * cutRatio);
  const cy = Math.floor(rng() * h);
  const cx = Math.floor(rng() * w);
  const y0 = Math.max(0, cy - Math.floor(ch / 2));
  const y1 = Math.min(h, cy + Math.floor(ch / 2));
  const x0 = Math.max(0, cx - Math.floor(cw / 2));
  const x1 = Math.min(w, cx + Math.floor(cw / 2));
  return { lam: 1 - ((y1 - y0) * (x1 - x0)) / (h * w), box: [y0, y1, x0, x1] };
}

/**
 * Applies a draw to a normalised NHWC batch: sample i is mixed with sample partner(i) (Mixup:
 * lam x_i + (1 - lam) x_p; CutMix: the box comes from x_p), targets with the same lambda.
 * Mutates `x` and returns the mixed soft targets.
 */
export function applyMix(
  x: Float32Array,
  shape: readonly [number, number, number, number],
  targets: Float32Array,
  numClasses: number,
  d: MixDraw,
  partner: (i: number) => number,
): Float32Array {
  const [n, , w, c] = shape;
  const per = shape[1] * w * c;
  const src = Float32Array.from(x);
  const { lam, box } = d;
  for (let i = 0; i < n; i++) {
    const j = partner(i);
    if (box) {
      const [y0, y1, x0, x1] = box;
      for (let y = y0; y < y1; y++)
        for (let xx = x0; xx < x1; xx++) for (let k = 0; k < c; k++) x[i * per + (y * w + xx) * c + k] = src[j * per + (y * w + xx) * c + k];
    } else {
      for (let k = 0; k < per; k++) x[i * per + k] = lam * src[i * per + k] + (1 - lam) * src[j * per + k];
    }
  }
  const mixed = new Float32Array(targets.length);
  for (let i = 0; i < n; i++) {
    const j = partner(i);
    for (let k = 0; k < numClasses; k++) mixed[i * numClasses + k] = lam * targets[i * numClasses + k] + (1 - lam) * targets[j * numClasses + k];
  }
  return mixed;
}

/**
 * Mixup / CutMix with the batch reversed as partner (timm 'batch' mode: i with n-1-i), one draw for
 * the batch. Mutates `x` and returns the mixed soft targets. (Training pairs within a worker's share
 * instead: src/train/data_parallel/classify_task.ts.)
 */
export function mixBatch(
  x: Float32Array,
  shape: [number, number, number, number],
  targets: Float32Array,
  numClasses: number,
  rng: Rng,
  o: MixOptions,
): Float32Array {
  const d = drawMix(rng, shape[1], shape[2], o);
  return d ? applyMix(x, shape, targets, numClasses, d, (i) => shape[0] - 1 - i) : targets;
}

/** Beta(a, a) via two Gamma draws (Marsaglia-Tsang). */
function sampleBeta(a: number, rng: Rng): number {
  const x = sampleGamma(a, rng);
  const y = sampleGamma(a, rng);
  return x / (x + y);
}

function sampleGamma(a: number, rng: Rng): number {
  if (a < 1) return sampleGamma(a + 1, rng) * Math.pow(rng() || 1e-12, 1 / a);
  const d = a - 1 / 3;
  const cc = 1 / Math.sqrt(9 * d);
  for (;;) {
    let z: number;
    let v: number;
    do {
      z = standardNormal(rng);
      v = 1 + cc * z;
    } while (v <= 0);
    v = v * v * v;
    const u = rng();
    if (u < 1 - 0.0331 * z ** 4 || Math.log(u || 1e-12) < 0.5 * z * z + d * (1 - v + Math.log(v))) return d * v;
  }
}
