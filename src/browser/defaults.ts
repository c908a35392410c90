/**
 * The browser entry's default preprocessing: timm's ConvNeXt eval at 224 (resize 256 bicubic,
 * centre crop 224, ImageNet mean/std). The same value as DEFAULT_PREPROCESSING of
 * src/inference/predictor.ts, which the browser bundle does not import (it brings the worker pool
 * and the zoo); test/inference/browser_defaults.test.ts keeps the two equal.
 */
import type { PreprocessingInfo } from '../model/preprocessing';
import { IMAGENET_MEAN, IMAGENET_STD } from '../model/preprocessing';

export const BROWSER_DEFAULT_PREPROCESSING: PreprocessingInfo = {
  inputSize: 224,
  cropPct: 0.875,
  cropMode: 'center',
  interpolation: 'bicubic',
  mean: [...IMAGENET_MEAN],
  std: [...IMAGENET_STD],
};
