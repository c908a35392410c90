/**
 * The decoded-image type every function in src/data takes and returns, and the error they throw.
 *
 * An RgbImage is what PIL's `Image.open(f).convert('RGB')` gives a timm/torchvision pipeline:
 * 8-bit RGB, height x width x 3, row-major, no alpha.
 */
import { ConvNeXtError } from '../errors';

/** 8-bit RGB pixels, HWC, row-major: the value of channel c at (x, y) is `data[(y * width + x) * 3 + c]`. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * An image file could not be read, is in a format we do not read, or could not be decoded. The
 * message is plain ("truncated PNG", "not a regular file"); `detail` keeps what the decoder itself
 * said, when a decoder failed, for bug reports.
 */
export class ImageError extends ConvNeXtError {
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** Throws ImageError unless `img` is a well-formed RgbImage; `what` names it in the message. */
export function checkRgbImage(img: RgbImage, what = 'image'): void {
  if (img === null || typeof img !== 'object') throw new ImageError(`${what}: expected an RgbImage {width, height, data}, got ${img === null ? 'null' : typeof img}`);
  const { width, height, data } = img;
  if (!Number.isSafeInteger(width) || width < 1 || !Number.isSafeInteger(height) || height < 1) {
    throw new ImageError(`${what}: width and height must be positive integers, got ${width} x ${height}`);
  }
  if (!(data instanceof Uint8Array)) throw new ImageError(`${what}: data must be a Uint8Array (RGB, HWC)`);
  if (data.length !== width * height * 3) {
    throw new ImageError(`${what}: data has ${data.length} bytes, expected ${width} x ${height} x 3 = ${width * height * 3}`);
  }
}
