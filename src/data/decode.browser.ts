/**
 * Browser variant of decode.ts (selected by scripts/build-browser.js): the page's own decoders
 * (createImageBitmap) instead of jimp, and no file paths: `input` is a URL, bytes, a Blob/File, an
 * <img>/<canvas>/ImageBitmap or ImageData. Same result type (RgbImage) and error (ImageError).
 */
import { BrowserImageInput, decodeBrowserImage } from './bitmap.browser';
import { RgbImage } from './image';

export type ImageFormat = 'jpeg' | 'png' | 'gif' | 'bmp' | 'tiff';

export interface DecodeOptions {
  /** Name of the image in error messages. */
  name?: string;
  /** Rotate/flip by the EXIF Orientation tag (default false: timm and torchvision ignore it). */
  exifOrientation?: boolean;
  /** Not enforced here: the browser's decoder has its own limits. */
  maxMegapixels?: number;
}

export async function decodeImage(input: BrowserImageInput, options: DecodeOptions = {}): Promise<RgbImage> {
  return decodeBrowserImage(input, { name: options.name, exifOrientation: options.exifOrientation });
}
