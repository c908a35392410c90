/**
 * Image input for ConvNeXt: decoding (jimp codecs, PIL-equivalent pixels), Pillow-exact resampling and
 * timm's ImageNet eval transform. NHWC float32 out, the TF.js layout.
 *
 *   import { preprocessFile, imageToTensor, decodeImage } from 'convnext-tfjs';
 *   const x = imageToTensor(await decodeImage('cat.jpg'));   // tf.Tensor4D [1, 224, 224, 3]
 */
export * from './portable';
export { DecodeOptions, ImageFormat, MAX_IMAGE_PIXELS, decodeImage, plainDecodeReason, sniffImageFormat } from './decode';
export { preprocessFile } from './transforms';
