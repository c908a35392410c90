/**
 * Pixel operations on 8-bit RGB images (HWC) for the automatic augmentations (TrivialAugmentWide in
 * augment.ts, RandAugment in rand_augment.ts). torchvision and timm run these as Pillow functions on
 * PIL images, so each equals its Pillow counterpart (checked against Pillow 9.4 by
 * test/train/make_augment_fixtures.py):
 *   convert('L')                 ITU-R 601-2 luma in 16-bit fixed point (libImaging/Convert.c rgb2l)
 *   Image.blend / ImageEnhance   degenerate + factor * (image - degenerate) in float32, truncated and
 *                                clipped (libImaging/Blend.c); Brightness, Color, Contrast, Sharpness
 *                                differ only in the degenerate image
 *   ImageFilter.SMOOTH           3x3 [1 1 1; 1 5 1; 1 1 1] / 13 in float32, +0.5, truncated, border kept
 *   ImageOps                     autocontrast (truncating LUT), equalize, invert, posterize, solarize
 *   Image.transform(AFFINE)      the inverse map sampled at pixel centres with Pillow's bilinear or
 *                                bicubic (a = -1) filter, source edges clamped; a sample whose centre
 *                                falls outside the source keeps the fill colour (libImaging/Geometry.c)
 * plus torchvision's nearest-neighbour affine about the centre with fill 0 (TrivialAugment's).
 */
import { RgbImage, remapPixels } from '../data/image';

export type Fill = readonly [number, number, number];

const clip = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);
const f32 = Math.fround;

/** Applies a 256-entry lookup table per channel (Image.point). */
function applyLuts(img: RgbImage, luts: readonly ArrayLike<number>[]): RgbImage {
  const [l0, l1, l2] = luts;
  const { data } = img;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < out.length; i += 3) {
    out[i] = l0[data[i]];
    out[i + 1] = l1[data[i + 1]];
    out[i + 2] = l2[data[i + 2]];
  }
  return { ...img, data: out };
}

function sameLut(f: (v: number) => number): ArrayLike<number>[] {
  const lut = Uint8Array.from({ length: 256 }, (_, v) => clip(f(v)));
  return [lut, lut, lut];
}

/** convert('L'): one luma byte per pixel, (19595 R + 38470 G + 7471 B + 2^15) >> 16. */
export function luma(img: RgbImage): Uint8Array {
  const { data } = img;
  const out = new Uint8Array(data.length / 3);
  for (let p = 0, i = 0; p < out.length; p++, i += 3) out[p] = (data[i] * 19595 + data[i + 1] * 38470 + data[i + 2] * 7471 + 0x8000) >>> 16;
  return out;
}

/**
 * Image.blend(degenerate, img, factor): `degenerate` is a grey level, one luma byte per pixel
 * (replicated over RGB), or a full RGB image. Pillow computes in float32 and truncates.
 */
export function blend(img: RgbImage, degenerate: number | Uint8Array, factor: number, perPixel = false): RgbImage {
  const a = f32(factor);
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i++) {
    const d = typeof degenerate === 'number' ? degenerate : degenerate[perPixel ? (i / 3) | 0 : i];
    const t = f32(d + f32(a * (img.data[i] - d)));
    out[i] = t <= 0 ? 0 : t >= 255 ? 255 : Math.trunc(t);
  }
  return { ...img, data: out };
}

/** ImageEnhance.Brightness: blend with black. */
export const brightness = (img: RgbImage, factor: number): RgbImage => blend(img, 0, factor);

/** ImageEnhance.Color: blend with the image's grey version. */
export const color = (img: RgbImage, factor: number): RgbImage => blend(img, luma(img), factor, true);

/** ImageEnhance.Contrast: blend with the mean grey level, int(mean(L) + 0.5). */
export function contrast(img: RgbImage, factor: number): RgbImage {
  const l = luma(img);
  let sum = 0;
  for (let i = 0; i < l.length; i++) sum += l[i];
  return blend(img, Math.floor(sum / l.length + 0.5), factor);
}

/** ImageFilter.SMOOTH, the degenerate image of ImageEnhance.Sharpness (border pixels unchanged). */
export function smooth(img: RgbImage): Uint8Array {
  const { width: w, height: h, data } = img;
  const out = Uint8Array.from(data);
  if (w < 3 || h < 3) return out; // Pillow returns a copy when the kernel does not fit
  const k1 = f32(1 / 13);
  const k5 = f32(5 / 13);
  // One kernel row: float32 products summed left to right, as Pillow's KERNEL1x3.
  const row = (i: number, mid: number) => f32(f32(f32(data[i - 3] * k1) + f32(data[i] * mid)) + f32(data[i + 3] * k1));
  for (let y = 1; y < h - 1; y++)
    for (let x = 1; x < w - 1; x++)
      for (let c = 0; c < 3; c++) {
        const i = (y * w + x) * 3 + c;
        let s = f32(0.5 + row(i + w * 3, k1)); // Pillow sums the row below first, then this one, then above
        s = f32(s + row(i, k5));
        s = f32(s + row(i - w * 3, k1));
        out[i] = s <= 0 ? 0 : s >= 255 ? 255 : Math.trunc(s);
      }
  return out;
}

/** ImageEnhance.Sharpness: blend with the smoothed image. */
export const sharpness = (img: RgbImage, factor: number): RgbImage => blend(img, smooth(img), factor);

/** ImageOps.autocontrast (no cutoff): each channel's [lo, hi] stretched to [0, 255], truncating. */
export function autocontrast(img: RgbImage): RgbImage {
  const lo = [255, 255, 255];
  const hi = [0, 0, 0];
  for (let i = 0; i < img.data.length; i += 3)
    for (let c = 0; c < 3; c++) {
      const v = img.data[i + c];
      if (v < lo[c]) lo[c] = v;
      if (v > hi[c]) hi[c] = v;
    }
  const luts = [0, 1, 2].map((c) => {
    if (hi[c] <= lo[c]) return Uint8Array.from({ length: 256 }, (_, v) => v);
    const scale = 255 / (hi[c] - lo[c]);
    const offset = -lo[c] * scale;
    return Uint8Array.from({ length: 256 }, (_, v) => clip(Math.trunc(v * scale + offset)));
  });
  return applyLuts(img, luts);
}

/** ImageOps.equalize: each channel's histogram flattened (Pillow's step rule, identity when flat). */
export function equalize(img: RgbImage): RgbImage {
  const luts: Uint8Array[] = [];
  for (let c = 0; c < 3; c++) {
    const hist = new Float64Array(256);
    for (let i = c; i < img.data.length; i += 3) hist[img.data[i]]++;
    let last = 255;
    while (hist[last] === 0) last--;
    const step = Math.floor((img.data.length / 3 - hist[last]) / 255);
    const lut = Uint8Array.from({ length: 256 }, (_, i) => i);
    if (step > 0) {
      let acc = Math.floor(step / 2);
      for (let i = 0; i < 256; i++) {
        lut[i] = Math.min(255, Math.floor(acc / step));
        acc += hist[i];
      }
    }
    luts.push(lut);
  }
  return applyLuts(img, luts);
}

/** ImageOps.invert. */
export const invert = (img: RgbImage): RgbImage =>
  applyLuts(
    img,
    sameLut((v) => 255 - v),
  );

/** ImageOps.posterize: keep the `bits` most significant bits (0 gives black; 8 or more: unchanged). */
export function posterize(img: RgbImage, bits: number): RgbImage {
  if (bits >= 8) return img;
  const mask = (0xff << (8 - Math.max(0, bits))) & 0xff;
  return applyLuts(
    img,
    sameLut((v) => v & mask),
  );
}

/** ImageOps.solarize: values >= threshold inverted. */
export const solarize = (img: RgbImage, threshold: number): RgbImage =>
  applyLuts(
    img,
    sameLut((v) => (v < threshold ? v : 255 - v)),
  );

/** timm's solarize_add: `add` added to values below `threshold`, clipped at 255. */
export const solarizeAdd = (img: RgbImage, add: number, threshold = 128): RgbImage =>
  applyLuts(
    img,
    sameLut((v) => (v < threshold ? Math.min(255, v + add) : v)),
  );

/** Pillow's affine coefficients: the source point of output pixel centre (X, Y) is (a X + b Y + c, d X + e Y + f). */
export type AffineCoefficients = readonly [number, number, number, number, number, number];

export type AffineResample = 'bilinear' | 'bicubic';

/** Pillow's cubic with a = -1 through v1..v4 at fraction d between v2 and v3. */
function cubic(v1: number, v2: number, v3: number, v4: number, d: number): number {
  return v2 + d * (-v1 + v3 + d * (2 * (v1 - v2) + v3 - v4 + d * (-v1 + v2 - v3 + v4)));
}

/** Image.transform(size, AFFINE, coefficients, resample, fillcolor) with the bilinear or bicubic filter. */
export function affineTransform(img: RgbImage, m: AffineCoefficients, resample: AffineResample, fill: Fill): RgbImage {
  const { width: w, height: h, data } = img;
  const out = new Uint8Array(data.length);
  const xc = (x: number) => (x < 0 ? 0 : x < w ? x : w - 1);
  const yc = (y: number) => (y < 0 ? 0 : y < h ? y : h - 1);
  const cols = new Int32Array(4);
  const rows = new Int32Array(4);
  for (let y = 0, o = 0; y < h; y++) {
    for (let x = 0; x < w; x++, o += 3) {
      const X = x + 0.5;
      const Y = y + 0.5;
      let sx = m[0] * X + m[1] * Y + m[2];
      let sy = m[3] * X + m[4] * Y + m[5];
      if (!(sx >= 0 && sx < w && sy >= 0 && sy < h)) {
        out[o] = fill[0];
        out[o + 1] = fill[1];
        out[o + 2] = fill[2];
        continue;
      }
      sx -= 0.5;
      sy -= 0.5;
      const ix = Math.floor(sx);
      const iy = Math.floor(sy);
      const dx = sx - ix;
      const dy = sy - iy;
      // Source columns clamped to the image; a row past the image repeats the one before it
      // (Pillow's row tests), which for the first row means clamping.
      const taps = resample === 'bilinear' ? 2 : 4;
      const first = resample === 'bilinear' ? 0 : -1;
      for (let k = 0; k < taps; k++) {
        cols[k] = xc(ix + first + k) * 3;
        const yy = iy + first + k;
        rows[k] = k === 0 ? yc(yy) * w * 3 : yy >= 0 && yy < h ? yy * w * 3 : rows[k - 1];
      }
      for (let c = 0; c < 3; c++) {
        if (taps === 2) {
          const [a0, a1, b0, b1] = [rows[0] + cols[0] + c, rows[0] + cols[1] + c, rows[1] + cols[0] + c, rows[1] + cols[1] + c];
          const v1 = data[a0] + (data[a1] - data[a0]) * dx;
          const v2 = data[b0] + (data[b1] - data[b0]) * dx;
          out[o + c] = Math.trunc(v1 + (v2 - v1) * dy);
        } else {
          const [c0, c1, c2, c3] = [cols[0] + c, cols[1] + c, cols[2] + c, cols[3] + c];
          const [r0, r1, r2, r3] = rows;
          const t = cubic(
            cubic(data[r0 + c0], data[r0 + c1], data[r0 + c2], data[r0 + c3], dx),
            cubic(data[r1 + c0], data[r1 + c1], data[r1 + c2], data[r1 + c3], dx),
            cubic(data[r2 + c0], data[r2 + c1], data[r2 + c2], data[r2 + c3], dx),
            cubic(data[r3 + c0], data[r3 + c1], data[r3 + c2], data[r3 + c3], dx),
            dy,
          );
          out[o + c] = t <= 0 ? 0 : t >= 255 ? 255 : Math.trunc(t);
        }
      }
    }
  }
  return { ...img, data: out };
}

/**
 * Image.rotate(degrees, resample, fillcolor) about the centre (w/2, h/2), counter-clockwise for
 * positive degrees, same size. Pillow first takes the angle modulo 360 (Python's %, so -30 becomes 330)
 * and rounds the matrix to 15 decimals (so 90 degrees is exact).
 */
export function rotate(img: RgbImage, degrees: number, resample: AffineResample, fill: Fill): RgbImage {
  let mod = degrees % 360;
  if (mod < 0) mod += 360;
  const a = -(mod * (Math.PI / 180)); // math.radians multiplies by pi / 180
  const r15 = (v: number) => Number(v.toFixed(15)) + 0; // + 0: no -0
  const [c, s] = [r15(Math.cos(a)), r15(Math.sin(a))];
  const cx = img.width / 2;
  const cy = img.height / 2;
  return affineTransform(img, [c, s, c * -cx + s * -cy + cx, -s, c, -s * -cx + c * -cy + cy], resample, fill);
}

/** Inverse-mapped affine warp about the image centre, nearest neighbour, fill 0 (torchvision's defaults for TrivialAugment). */
export function affineNearestCentred(img: RgbImage, m: AffineCoefficients): RgbImage {
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
