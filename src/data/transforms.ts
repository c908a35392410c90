/**
 * ImageNet evaluation preprocessing, as timm builds it for ConvNeXt (timm/data/transforms_factory.py
 * transforms_imagenet_eval) on torchvision's PIL transforms:
 *
 *   center: Resize(floor(inputSize / cropPct), bicubic)  # shorter side; the other int(s * long / short)
 *           CenterCrop(inputSize)                        # top = round((h - th) / 2), half to even
 *   squash: Resize((floor(inputSize / cropPct),) * 2)    # warp, no aspect ratio kept; 384+ models
 *           CenterCrop(inputSize)                        #   use cropPct 1.0: warp straight to 384
 *   then    ToTensor()                                   # v / 255 in float32
 *           Normalize(mean, std)                         # (x - mean) / std in float32
 *
 * Outputs are NHWC [1, H, W, 3], the layout TF.js convolutions take; toNchw gives PyTorch's.
 * With the same 8-bit pixels the result equals torchvision's bit for bit.
 *
 *   const x = evalTransform(await decodeImage('cat.jpg'));      // { shape: [1, 224, 224, 3], data }
 *   const t = await preprocessFile('cat.jpg', { inputSize: 384, cropPct: 1, cropMode: 'squash' });
 */
import * as tf from '@tensorflow/tfjs-core';
import { RgbImage, checkRgbImage } from './image';
import { ImageError } from '../errors';
import { DecodeOptions, decodeImage } from './decode';
import { Interpolation, resize, resizeWindow } from './resize';
import { IMAGENET_MEAN, IMAGENET_STD } from '../model/preprocessing';

/** timm OPENAI_CLIP_MEAN / STD, for ConvNeXt CLIP towers and their fine-tunes. */
export const CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** Options of evalTransform: timm's pretrained_cfg fields, with timm's ConvNeXt defaults. */
export interface EvalTransformOptions {
  /** Output size: a square side, or [height, width] (default 224). */
  inputSize?: number | [number, number];
  /** Fraction of the resized image the crop keeps (default 0.875: resize 256, crop 224). */
  cropPct?: number;
  /** 'center' keeps the aspect ratio and crops (default); 'squash' warps to a square first. */
  cropMode?: 'center' | 'squash';
  /** Default 'bicubic'. */
  interpolation?: Interpolation;
  /** Per-channel RGB mean and std in [0, 1] units (default ImageNet's). */
  mean?: readonly number[];
  std?: readonly number[];
}

/** A dense float32 array and its shape: the `{shape, data}` pair readNpy and writeNpy use. */
export interface Float32Array4D {
  shape: [number, number, number, number];
  data: Float32Array;
}

/** Python's round(): half to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function sizePair(inputSize: number | [number, number]): [number, number] {
  const [h, w] = typeof inputSize === 'number' ? [inputSize, inputSize] : inputSize;
  if (!Number.isSafeInteger(h) || h < 1 || !Number.isSafeInteger(w) || w < 1) {
    throw new ImageError(`inputSize must be a positive integer or [height, width], got ${JSON.stringify(inputSize)}`);
  }
  return [h, w];
}

/** timm's scale size: floor(size / cropPct), e.g. 256 for 224 at 0.875. */
export function evalResizeSize(inputSize: number, cropPct = 0.875): number {
  if (!(cropPct > 0)) throw new ImageError(`cropPct must be positive, got ${cropPct}`);
  return Math.floor(inputSize / cropPct);
}

/** torchvision `Resize(size)`'s output size for an int size: shorter side `size`, longer int(size * long / short). */
function shorterSideSize(w: number, h: number, size: number): [number, number] {
  if (!Number.isSafeInteger(size) || size < 1) throw new ImageError(`resize size must be a positive integer, got ${size}`);
  const [short, long] = w <= h ? [w, h] : [h, w];
  const newLong = Math.trunc((size * long) / short);
  return w <= h ? [size, newLong] : [newLong, size];
}

/**
 * torchvision `Resize(size)` with an int: the shorter side becomes `size`, the longer
 * int(size * long / short); an image already that size is returned as is (a copy).
 */
export function resizeShorterSide(img: RgbImage, size: number, interpolation: Interpolation = 'bicubic'): RgbImage {
  checkRgbImage(img);
  const [nw, nh] = shorterSideSize(img.width, img.height, size);
  return resize(img, nw, nh, { interpolation });
}

/** Where torchvision's CenterCrop((height, width)) takes its window in an image w x h (negative: padding). */
function centerCropWindow(w: number, h: number, height: number, width: number): { left: number; top: number } {
  const padLeft = width > w ? Math.floor((width - w) / 2) : 0;
  const padTop = height > h ? Math.floor((height - h) / 2) : 0;
  return { left: roundHalfEven((Math.max(w, width) - width) / 2) - padLeft, top: roundHalfEven((Math.max(h, height) - height) / 2) - padTop };
}

/**
 * torchvision `CenterCrop((height, width))`: the crop's top-left corner is round((h - height) / 2),
 * round((w - width) / 2) with Python's half-to-even rounding; an image smaller than the crop is first
 * padded with black (left/top get the smaller half), as torchvision does.
 */
export function centerCrop(img: RgbImage, height: number, width: number): RgbImage {
  checkRgbImage(img);
  if (!Number.isSafeInteger(width) || width < 1 || !Number.isSafeInteger(height) || height < 1) {
    throw new ImageError(`centerCrop: size must be positive integers, got ${height} x ${width}`);
  }
  let { width: w, height: h } = img;
  let padLeft = 0;
  let padTop = 0;
  if (width > w || height > h) {
    padLeft = width > w ? Math.floor((width - w) / 2) : 0;
    padTop = height > h ? Math.floor((height - h) / 2) : 0;
    w = Math.max(w, width);
    h = Math.max(h, height);
  }
  const top = roundHalfEven((h - height) / 2) - padTop;
  const left = roundHalfEven((w - width) / 2) - padLeft;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= img.height) continue;
    for (let x = 0; x < width; x++) {
      const sx = x + left;
      if (sx < 0 || sx >= img.width) continue;
      const s = (sy * img.width + sx) * 3;
      const o = (y * width + x) * 3;
      out[o] = img.data[s];
      out[o + 1] = img.data[s + 1];
      out[o + 2] = img.data[s + 2];
    }
  }
  return { width, height, data: out };
}

function checkStats(v: readonly number[] | undefined, name: string, fallback: readonly number[]): number[] {
  const s = v ?? fallback;
  if (s.length !== 3 || !s.every(Number.isFinite)) throw new ImageError(`${name} must be 3 finite numbers (RGB), got ${JSON.stringify(v)}`);
  if (name === 'std' && !s.every((x) => x > 0)) throw new ImageError(`std must be positive, got ${JSON.stringify(v)}`);
  return [...s];
}

/**
 * torchvision ToTensor + Normalize, in HWC: float32 ((v / 255) - mean) / std per channel, computed
 * with float32 rounding at each step as torch does. Returns NHWC [1, H, W, 3].
 */
export function normalizeImage(img: RgbImage, mean: readonly number[] = IMAGENET_MEAN, std: readonly number[] = IMAGENET_STD): Float32Array4D {
  checkRgbImage(img);
  const m = checkStats(mean, 'mean', IMAGENET_MEAN).map(Math.fround);
  const s = checkStats(std, 'std', IMAGENET_STD).map(Math.fround);
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = Math.fround(Math.fround(Math.fround(v / 255) - m[c]) / s[c]);
  }
  const n = img.width * img.height;
  const out = new Float32Array(n * 3);
  const d = img.data;
  for (let k = 0; k < 3 * n; k += 3) {
    out[k] = lut[d[k]];
    out[k + 1] = lut[256 + d[k + 1]];
    out[k + 2] = lut[512 + d[k + 2]];
  }
  return { shape: [1, img.height, img.width, 3], data: out };
}

/**
 * The 8-bit image evalTransform feeds to normalisation: resized and cropped, before ToTensor.
 * Useful to inspect or save what the model will see.
 */
export function evalResizeCrop(img: RgbImage, options: EvalTransformOptions = {}): RgbImage {
  checkRgbImage(img);
  const [th, tw] = sizePair(options.inputSize ?? 224);
  const cropPct = options.cropPct ?? 0.875;
  const mode = options.cropMode ?? 'center';
  const interpolation = options.interpolation ?? 'bicubic';
  if (!(cropPct > 0)) throw new ImageError(`cropPct must be positive, got ${cropPct}`);
  let resized: RgbImage;
  if (mode === 'squash') {
    resized = resize(img, Math.floor(tw / cropPct), Math.floor(th / cropPct), { interpolation });
  } else if (mode === 'center') {
    if (th !== tw) {
      // timm uses ResizeKeepRatio for non-square sizes; only the square case is torchvision's Resize.
      throw new ImageError(`cropMode 'center' needs a square inputSize, got [${th}, ${tw}] (use cropMode 'squash')`);
    }
    // Resize + CenterCrop as one windowed resample: the same pixels, but only the crop is built,
    // so a 100000 x 1 strip (resized to 25.6M x 256) costs what a photo costs.
    checkRgbImage(img);
    const [nw, nh] = shorterSideSize(img.width, img.height, Math.floor(th / cropPct));
    return resizeWindow(img, nw, nh, { ...centerCropWindow(nw, nh, th, tw), width: tw, height: th }, { interpolation });
  } else {
    throw new ImageError(`unknown cropMode '${String(mode)}' (use 'center' or 'squash')`);
  }
  return resized.width === tw && resized.height === th ? resized : centerCrop(resized, th, tw);
}

/**
 * timm's ImageNet eval transform for ConvNeXt: resize (shorter side to floor(inputSize / cropPct),
 * or a squash), center crop, scale to [0, 1], normalise. Returns NHWC [1, H, W, 3] float32
 * (H, W: inputSize).
 *
 *   const x = evalTransform(img);                                              // 224 models
 *   const y = evalTransform(img, { inputSize: 384, cropPct: 1, cropMode: 'squash' });  // 384 models
 */
export function evalTransform(img: RgbImage, options: EvalTransformOptions = {}): Float32Array4D {
  return normalizeImage(evalResizeCrop(img, options), options.mean ?? IMAGENET_MEAN, options.std ?? IMAGENET_STD);
}

/** NHWC -> NCHW (PyTorch's layout), e.g. to write what PyTorch reads: writeNpy(file, toNchw(x)). */
export function toNchw(x: Float32Array4D): Float32Array4D {
  const [n, h, w, c] = x.shape;
  if (x.data.length !== n * h * w * c) throw new ImageError(`toNchw: shape [${x.shape.join(', ')}] does not match ${x.data.length} values`);
  const out = new Float32Array(x.data.length);
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    const base = b * hw * c;
    for (let p = 0; p < hw; p++) for (let k = 0; k < c; k++) out[base + k * hw + p] = x.data[base + p * c + k];
  }
  return { shape: [n, c, h, w], data: out };
}

/** evalTransform as a TF.js tensor, NHWC [1, H, W, 3] float32 (the caller disposes it). */
export function imageToTensor(img: RgbImage, options: EvalTransformOptions = {}): tf.Tensor4D {
  const x = evalTransform(img, options);
  return tf.tensor4d(x.data, x.shape, 'float32');
}

/**
 * Decode an image file and apply evalTransform: what timm's eval loader gives a ConvNeXt, as
 * NHWC [1, H, W, 3] float32.
 *
 *   const { shape, data } = await preprocessFile('cat.jpg');     // shape [1, 224, 224, 3]
 */
export async function preprocessFile(file: string | Buffer | Uint8Array, options: EvalTransformOptions & DecodeOptions = {}): Promise<Float32Array4D> {
  return evalTransform(await decodeImage(file, options), options);
}
