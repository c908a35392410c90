/**
 * Image resampling that reproduces Pillow's `Image.resize(size, BICUBIC | BILINEAR, box)` on 8-bit
 * RGB images bit for bit (Pillow src/libImaging/Resample.c, the code torchvision's Resize runs on
 * PIL images):
 *
 * - a separable convolution, horizontal pass first, then vertical;
 * - "antialias": when shrinking by a factor s > 1 the filter is stretched by s (support 2s for
 *   bicubic, s for bilinear), so every source pixel contributes;
 * - bicubic is Keys' cubic with a = -0.5; bilinear is the triangle filter;
 * - weights per output pixel are normalised to sum 1, then rounded to 22-bit fixed point; each pass
 *   accumulates integers and rounds (add half, shift) and clips to 0..255, so the horizontal pass's
 *   output is an 8-bit image, as in Pillow.
 *
 *   const small = resize(img, 341, 256);                         // bicubic, antialiased
 *   const crop = resize(img, 224, 224, { box: [10, 10, 410, 410] });  // a region, like PIL's box
 *   const win = resizeWindow(img, 25600000, 256, { left: 12799888, top: 16, width: 224, height: 224 });
 */
import { RgbImage, checkRgbImage } from './image';
import { ImageError } from '../errors';

/** Interpolation filters (the ones timm's ConvNeXt configs and RandomResizedCrop use). */
export type Interpolation = 'bicubic' | 'bilinear';

/** Options of resize. */
export interface ResizeOptions {
  /** Default 'bicubic'. */
  interpolation?: Interpolation;
  /**
   * Stretch the filter when shrinking, as Pillow always does (default true). false gives a plain
   * (aliasing) bicubic/bilinear interpolation, for comparison only.
   */
  antialias?: boolean;
  /**
   * The source region to resample, [left, top, right, bottom] in pixels (fractions allowed), as
   * Pillow's `box`; default the whole image.
   */
  box?: [number, number, number, number];
}

interface Filter {
  support: number;
  fn: (x: number) => number;
}

// Pillow's filter functions, the same operations in the same order.
const FILTERS: Record<Interpolation, Filter> = {
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  bilinear: {
    support: 1,
    fn: (x) => {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
};

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const MAX_ACC = 255 << PRECISION_BITS;

/** Per output pixel: the first source index, the number of taps, and fixed-point weights. */
interface Coeffs {
  ksize: number;
  bounds: Int32Array;
  kk: Int32Array;
}

/**
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis, for the output pixels
 * [first, first + count) of `outSize` (all by default): each pixel's coefficients depend on its
 * index only, so a window of the output costs what the window costs.
 */
function precomputeCoeffs(inSize: number, in0: number, in1: number, outSize: number, filter: Filter, antialias: boolean, first = 0, count = outSize): Coeffs {
  const scale = Math.fround(in1 - in0) / outSize;
  const filterscale = antialias && scale > 1 ? scale : 1;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(count * 2);
  const kk = new Int32Array(count * ksize);
  const k = new Float64Array(ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < count; xx++) {
    const center = in0 + (xx + first + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0.0 ? k[x] / ww : k[x];
      kk[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = Math.max(xmax, 0);
  }
  return { ksize, bounds, kk };
}

/** Pillow's clip8: the accumulator (already holding +half) shifted down and clipped to 0..255. */
function clip8(acc: number): number {
  if (acc >= MAX_ACC) return 255;
  if (acc <= 0) return 0;
  return acc >> PRECISION_BITS;
}

/** Horizontal pass over source rows [y0, y0 + rows): RGB, HWC in and out. */
function resampleHorizontal(src: Uint8Array, inW: number, y0: number, rows: number, outW: number, c: Coeffs): Uint8Array {
  const dst = new Uint8Array(outW * rows * 3);
  const { ksize, bounds, kk } = c;
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + y0) * inW * 3;
    let o = y * outW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[2 * xx];
      const xmax = bounds[2 * xx + 1];
      const kOff = xx * ksize;
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      let p = rowIn + xmin * 3;
      for (let x = 0; x < xmax; x++) {
        const w = kk[kOff + x];
        s0 += src[p] * w;
        s1 += src[p + 1] * w;
        s2 += src[p + 2] * w;
        p += 3;
      }
      dst[o++] = clip8(s0);
      dst[o++] = clip8(s1);
      dst[o++] = clip8(s2);
    }
  }
  return dst;
}

/** Vertical pass; `bounds` are relative to the first row of `src`. Row by row, for locality. */
function resampleVertical(src: Uint8Array, width: number, outH: number, c: Coeffs): Uint8Array {
  const rowLen = width * 3;
  const dst = new Uint8Array(rowLen * outH);
  const acc = new Float64Array(rowLen);
  const { ksize, bounds, kk } = c;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[2 * yy];
    const ymax = bounds[2 * yy + 1];
    acc.fill(HALF);
    for (let y = 0; y < ymax; y++) {
      const w = kk[yy * ksize + y];
      const r = (ymin + y) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] += src[r + i] * w;
    }
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) dst[o + i] = clip8(acc[i]);
  }
  return dst;
}

/** Largest image resize() builds: 2^30 bytes of RGB (a 18918 x 18918 image); past it, take a window. */
const MAX_OUTPUT_BYTES = 2 ** 30;

/** Sizes and filter of a resize, validated. */
function resizeSetup(img: RgbImage, width: number, height: number, options: ResizeOptions) {
  checkRgbImage(img);
  if (!Number.isSafeInteger(width) || width < 1 || !Number.isSafeInteger(height) || height < 1) {
    throw new ImageError(`resize: width and height must be positive integers, got ${width} x ${height}`);
  }
  const interpolation = options.interpolation ?? 'bicubic';
  const filter = FILTERS[interpolation];
  if (filter === undefined) throw new ImageError(`resize: unknown interpolation '${interpolation}' (use 'bicubic' or 'bilinear')`);
  const antialias = options.antialias ?? true;
  // Pillow keeps box coordinates as C floats.
  const box = (options.box ?? [0, 0, img.width, img.height]).map(Math.fround) as [number, number, number, number];
  const [x0, y0, x1, y1] = box;
  if (!box.every(Number.isFinite) || x0 < 0 || y0 < 0 || x1 > img.width || y1 > img.height || x1 - x0 <= 0 || y1 - y0 <= 0) {
    throw new ImageError(`resize: box [${options.box?.join(', ')}] must lie within the ${img.width} x ${img.height} image and have positive size`);
  }
  const needH = width !== img.width || x0 !== 0 || x1 !== width;
  const needV = height !== img.height || y0 !== 0 || y1 !== height;
  return { filter, antialias, box, needH, needV };
}

/** A pixel window of an image: columns [left, left + width), rows [top, top + height); may reach outside it. */
export interface PixelWindow {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * The `window` of `resize(img, width, height, options)`, bit for bit, without building the rest:
 * only the window's output columns and rows are resampled (and only the source rows they read),
 * so memory and time follow the window, not the resized size. Pixels of the window outside the
 * resized image are black (torchvision pads a CenterCrop larger than the image that way). This is
 * how an extreme aspect ratio (a 100000 x 1 strip, shorter side to 256: 25.6M x 256) is resized
 * and centre-cropped in a few kilobytes.
 *
 *   const crop = resizeWindow(img, 341, 256, { left: 58, top: 16, width: 224, height: 224 });
 */
export function resizeWindow(img: RgbImage, width: number, height: number, window: PixelWindow, options: ResizeOptions = {}): RgbImage {
  const { filter, antialias, box, needH, needV } = resizeSetup(img, width, height, options);
  const { left, top, width: ww, height: wh } = window;
  if (![left, top].every(Number.isSafeInteger) || !Number.isSafeInteger(ww) || ww < 1 || !Number.isSafeInteger(wh) || wh < 1) {
    throw new ImageError(`resizeWindow: window must be integers with positive size, got ${JSON.stringify(window)}`);
  }
  const out = new Uint8Array(ww * wh * 3);
  // The part of the window inside the resized image.
  const cx0 = Math.max(0, left);
  const cx1 = Math.min(width, left + ww);
  const ry0 = Math.max(0, top);
  const ry1 = Math.min(height, top + wh);
  if (cx1 <= cx0 || ry1 <= ry0) return { width: ww, height: wh, data: out };
  const nc = cx1 - cx0;
  const nr = ry1 - ry0;
  const [x0, y0, x1, y1] = box;
  let srcFirst = ry0;
  let srcRows = nr;
  let vert: Coeffs | null = null;
  if (needV) {
    vert = precomputeCoeffs(img.height, y0, y1, height, filter, antialias, ry0, nr);
    srcFirst = vert.bounds[0];
    srcRows = vert.bounds[2 * nr - 2] + vert.bounds[2 * nr - 1] - srcFirst;
    for (let i = 0; i < nr; i++) vert.bounds[2 * i] -= srcFirst;
  }
  let data: Uint8Array;
  if (needH) {
    data = resampleHorizontal(img.data, img.width, srcFirst, srcRows, nc, precomputeCoeffs(img.width, x0, x1, width, filter, antialias, cx0, nc));
  } else {
    data = new Uint8Array(nc * srcRows * 3);
    for (let y = 0; y < srcRows; y++) data.set(img.data.subarray(((srcFirst + y) * img.width + cx0) * 3, ((srcFirst + y) * img.width + cx1) * 3), y * nc * 3);
  }
  if (vert !== null) data = resampleVertical(data, nc, nr, vert);
  for (let y = 0; y < nr; y++) out.set(data.subarray(y * nc * 3, (y + 1) * nc * 3), ((ry0 - top + y) * ww + (cx0 - left)) * 3);
  return { width: ww, height: wh, data: out };
}

/**
 * Resize an RGB image to `width` x `height` like Pillow's `Image.resize((width, height), filter, box)`:
 * bicubic (default) or bilinear, antialiased when shrinking, identical 8-bit output.
 *
 *   const out = resize(img, 256, 256, { interpolation: 'bilinear' });
 */
export function resize(img: RgbImage, width: number, height: number, options: ResizeOptions = {}): RgbImage {
  const { filter, antialias, box, needH, needV } = resizeSetup(img, width, height, options);
  const [x0, y0, x1, y1] = box;
  if (width * height * 3 > MAX_OUTPUT_BYTES || width * img.height * 3 > 2 * MAX_OUTPUT_BYTES) {
    throw new ImageError(
      `resize: ${img.width} x ${img.height} to ${width} x ${height} is too large to build (over ${MAX_OUTPUT_BYTES} bytes); take a window of it with resizeWindow`,
    );
  }
  if (!needH && !needV) return { width, height, data: new Uint8Array(img.data) };

  const vert = precomputeCoeffs(img.height, y0, y1, height, filter, antialias);
  let data = img.data;
  let w = img.width;
  if (needH) {
    // Only the source rows the vertical pass reads, as Pillow does.
    const first = vert.bounds[0];
    const last = vert.bounds[2 * height - 2] + vert.bounds[2 * height - 1];
    for (let i = 0; i < height; i++) vert.bounds[2 * i] -= first;
    const horiz = precomputeCoeffs(img.width, x0, x1, width, filter, antialias);
    data = resampleHorizontal(data, img.width, first, last - first, width, horiz);
    w = width;
  }
  if (needV) data = resampleVertical(data, w, height, vert);
  else if (data === img.data) data = new Uint8Array(data);
  return { width, height, data };
}
