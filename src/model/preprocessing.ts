/**
 * The eval preprocessing a ConvNeXt expects, as data (timm's pretrained_cfg: input_size, crop_pct,
 * crop_mode, interpolation, mean, std) and the one rule that derives it from an input size.
 *
 * The rule is timm's convnext default_cfgs: 224 (and any smaller or intermediate size a model is
 * trained at here, 256 and 288 included) resize the shorter side to size / 0.875 and center-crop;
 * the 384 and 512 fine-tunes use crop_pct 1.0 with crop_mode 'squash' (a warp straight to the size).
 * Every part of the library (zoo, trainer, predictor, CLI) asks this module; nothing restates it.
 */

import { ConfigError } from '../errors';

/** ImageNet channel mean (RGB, 0-1 scale), as torchvision and timm normalise. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
/** ImageNet channel standard deviation (RGB, 0-1 scale). */
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** timm's DEFAULT_CROP_PCT. */
export const DEFAULT_CROP_PCT = 0.875;
/** From this input size on, the official fine-tunes are evaluated squashed (crop_pct 1). */
export const SQUASH_FROM_SIZE = 384;

/** Eval preprocessing a model expects (timm pretrained_cfg). */
export interface PreprocessingInfo {
  inputSize: number;
  cropPct: number;
  cropMode?: 'center' | 'squash';
  interpolation: 'bicubic' | 'bilinear';
  mean: [number, number, number];
  std: [number, number, number];
}

/**
 * The eval preprocessing for a model whose input side is `inputSize`.
 *
 *   evalPreprocessing(224)  // { inputSize: 224, cropPct: 0.875, cropMode: 'center', ... }
 *   evalPreprocessing(384)  // { inputSize: 384, cropPct: 1, cropMode: 'squash', ... }
 */
export function evalPreprocessing(inputSize: number): PreprocessingInfo {
  const squash = inputSize >= SQUASH_FROM_SIZE;
  return {
    inputSize,
    cropPct: squash ? 1 : DEFAULT_CROP_PCT,
    cropMode: squash ? 'squash' : 'center',
    interpolation: 'bicubic',
    mean: [...IMAGENET_MEAN],
    std: [...IMAGENET_STD],
  };
}

/** Smallest model input side: the stem (stride 4) and three downsamplings (stride 2) need 32 pixels. */
export const MIN_INPUT_SIZE = 32;
/**
 * Largest model input side accepted: 2048, four times the largest official resolution (512). A
 * ConvNeXt-T activation map at 2048 is already 1.6 GB for one image; sizes past it only exhaust
 * memory, so they are refused up front with a message instead.
 */
export const MAX_INPUT_SIZE = 2048;

/** Throws unless `v` is an integer input side from MIN_INPUT_SIZE to MAX_INPUT_SIZE; `name` is the option's name. */
export function checkInputSize(v: unknown, name = 'imageSize'): number {
  if (!(typeof v === 'number' && Number.isInteger(v) && v >= MIN_INPUT_SIZE && v <= MAX_INPUT_SIZE)) {
    throw new ConfigError(
      `${name} must be an integer from ${MIN_INPUT_SIZE} to ${MAX_INPUT_SIZE} (pixels of the square model input), got ${JSON.stringify(v)}`,
    );
  }
  return v;
}
