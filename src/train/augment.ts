/**
 * Training augmentations on 8-bit RGB images (HWC), torchvision semantics:
 *   RandomResizedCrop(scale (0.08, 1), ratio (3/4, 4/3)) with Pillow-exact bicubic resampling,
 *   RandomHorizontalFlip(0.5), TrivialAugmentWide (one random op at a random magnitude of 31 bins),
 * and Mixup / CutMix on normalised tensors with soft targets (timm Mixup: one draw per batch; the
 * partner of a sample is given by the caller).
 * Randomness comes from a caller's seeded generator, so epochs are reproducible.
 */
import { RgbImage, remapPixels } from '../data/image';
import { resize } from '../data/resize';

/** A uniform [0, 1) generator (seedrandom's prng). */
export type Rng = () => number;

function uniform(rng: Rng, a: number, b: number): number {
  return a + (b - a) * rng();
}

function randint(rng: Rng, lo: number, hiInclusive: number): number {
  return lo + Math.floor(rng() * (hiInclusive - lo + 1));
}

/** torchvision RandomResizedCrop.get_params: [top, left, height, width]. */
export function randomResizedCropParams(
  w: number,
  h: number,
  rng: Rng,
  scale: [number, number] = [0.08, 1],
  ratio: [number, number] = [3 / 4, 4 / 3],
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

export function randomResizedCrop(img: RgbImage, size: number, rng: Rng, scale?: [number, number]): RgbImage {
  const [top, left, ch, cw] = randomResizedCropParams(img.width, img.height, rng, scale);
  return resize(img, size, size, { interpolation: 'bicubic', box: [left, top, left + cw, top + ch] });
}

export function flipHorizontal(img: RgbImage): RgbImage {
  const { width: w, height: h } = img;
  return remapPixels(img, w, h, (x, y) => y * w + (w - 1 - x));
}

const clip = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

function mapPixels(img: RgbImage, f: (v: number, c: number) => number): RgbImage {
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = clip(Math.round(f(img.data[i], i % 3)));
  return { ...img, data: out };
}

/** PIL ImageEnhance-style blend: out = degenerate + factor * (img - degenerate). */
function blend(img: RgbImage, degenerate: Uint8Array | number, factor: number): RgbImage {
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i++) {
    const d = typeof degenerate === 'number' ? degenerate : degenerate[i];
    out[i] = clip(Math.round(d + factor * (img.data[i] - d)));
  }
  return { ...img, data: out };
}

function grayscale(img: RgbImage): Uint8Array {
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i += 3) {
    const l = Math.round((img.data[i] * 299 + img.data[i + 1] * 587 + img.data[i + 2] * 114) / 1000);
    out[i] = out[i + 1] = out[i + 2] = l;
  }
  return out;
}

/** Inverse-mapped affine warp, nearest neighbour, fill 0 (torchvision's defaults for TrivialAugment). */
function affine(img: RgbImage, m: [number, number, number, number, number, number]): RgbImage {
  const { width: w, height: h } = img;
  const cx = w * 0.5;
  const cy = h * 0.5;
  return remapPixels(img, w, h, (x, y) => {
    const xc = x + 0.5 - cx;
    const yc = y + 0.5 - cy;
    const sx = Math.floor(m[0] * xc + m[1] * yc + m[2] + cx);
    const sy = Math.floor(m[3] * xc + m[4] * yc + m[5] + cy);
    return sx < 0 || sy < 0 || sx >= w || sy >= h ? -1 : sy * w + sx;
  });
}

function autocontrast(img: RgbImage): RgbImage {
  const lo = [255, 255, 255];
  const hi = [0, 0, 0];
  for (let i = 0; i < img.data.length; i++) {
    const c = i % 3;
    lo[c] = Math.min(lo[c], img.data[i]);
    hi[c] = Math.max(hi[c], img.data[i]);
  }
  return mapPixels(img, (v, c) => (hi[c] > lo[c] ? ((v - lo[c]) * 255) / (hi[c] - lo[c]) : v));
}

function equalize(img: RgbImage): RgbImage {
  const luts: number[][] = [];
  for (let c = 0; c < 3; c++) {
    const hist = new Array<number>(256).fill(0);
    for (let i = c; i < img.data.length; i += 3) hist[img.data[i]]++;
    const nonzero = hist.filter((x) => x > 0);
    const step = Math.floor((img.data.length / 3 - nonzero[nonzero.length - 1]) / 255);
    const lut = Array.from({ length: 256 }, (_, i) => i);
    if (step > 0) {
      let acc = Math.floor(step / 2);
      for (let i = 0; i < 256; i++) {
        lut[i] = Math.min(255, Math.floor(acc / step));
        acc += hist[i];
      }
    }
    luts.push(lut);
  }
  return mapPixels(img, (v, c) => luts[c][v]);
}

function boxBlur3(img: RgbImage): Uint8Array {
  // PIL's SMOOTH kernel [[1,1,1],[1,5,1],[1,1,1]] / 13, borders kept.
  const { width: w, height: h, data } = img;
  const out = Uint8Array.from(data);
  for (let y = 1; y < h - 1; y++)
    for (let x = 1; x < w - 1; x++)
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) s += data[((y + dy) * w + x + dx) * 3 + c] * (dx === 0 && dy === 0 ? 5 : 1);
        out[(y * w + x) * 3 + c] = clip(Math.round(s / 13));
      }
  return out;
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
  { name: 'Brightness', max: 0.99, signed: true, apply: (img, m) => blend(img, 0, 1 + m) },
  { name: 'Color', max: 0.99, signed: true, apply: (img, m) => blend(img, grayscale(img), 1 + m) },
  {
    name: 'Contrast',
    max: 0.99,
    signed: true,
    apply: (img, m) => {
      const g = grayscale(img);
      let mean = 0;
      for (let i = 0; i < g.length; i += 3) mean += g[i];
      return blend(img, Math.round(mean / (g.length / 3)), 1 + m);
    },
  },
  { name: 'Sharpness', max: 0.99, signed: true, apply: (img, m) => blend(img, boxBlur3(img), 1 + m) },
  {
    name: 'Posterize',
    max: 6,
    signed: false,
    apply: (img, m) => {
      const bits = 8 - Math.round(m); // torchvision: 8 - round(bin * 6 / 30)
      const mask = (0xff << (8 - bits)) & 0xff;
      return mapPixels(img, (v) => v & mask);
    },
  },
  { name: 'Solarize', max: 255, signed: false, apply: (img, m) => mapPixels(img, (v) => (v >= 255 - m ? 255 - v : v)) },
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
  scale?: [number, number];
  hflip?: number;
  trivialAugment?: boolean;
}

/** RandomResizedCrop -> flip -> TrivialAugmentWide, on uint8 RGB (normalisation comes after). */
export function trainTransform(img: RgbImage, rng: Rng, o: TrainTransformOptions): RgbImage {
  let out = randomResizedCrop(img, o.size, rng, o.scale);
  if (rng() < (o.hflip ?? 0.5)) out = flipHorizontal(out);
  if (o.trivialAugment ?? true) out = trivialAugment(out, rng);
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
      z = Math.sqrt(-2 * Math.log(rng() || 1e-12)) * Math.cos(2 * Math.PI * rng());
      v = 1 + cc * z;
    } while (v <= 0);
    v = v * v * v;
    const u = rng();
    if (u < 1 - 0.0331 * z ** 4 || Math.log(u || 1e-12) < 0.5 * z * z + d * (1 - v + Math.log(v))) return d * v;
  }
}
