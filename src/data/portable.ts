/**
 * The part of the image input that runs anywhere (Node and the page): the image type, Pillow-exact
 * resampling and timm's eval transform on decoded pixels. Re-exported by src/data/index.ts (with
 * the Node decoders and `preprocessFile`) and by src/browser/index.ts (with the browser decoders).
 */
export { RgbImage } from './image';
export { Interpolation, ResizeOptions, resize } from './resize';
export {
  CLIP_MEAN,
  CLIP_STD,
  EvalTransformOptions,
  Float32Array4D,
  centerCrop,
  evalResizeCrop,
  evalResizeSize,
  evalTransform,
  imageToTensor,
  normalizeImage,
  resizeShorterSide,
  toNchw,
} from './transforms';
