/**
 * The decoded-image type every function in src/data takes and returns, and the error they throw.
 *
 * An RgbImage is what PIL's `Image.open(f).convert('RGB')` gives a timm/torchvision pipeline:
 * 8-bit RGB, height x width x 3, row-major, no alpha.
 */
import { ImageError } from '../errors';

/** 8-bit RGB pixels, HWC, row-major: the value of channel c at (x, y) is `data[(y * width + x) * 3 + c]`. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * The one pixel-remap loop (orientation, flips, nearest-neighbour affine warps): an ow x oh image
 * whose pixel (x, y) copies the source pixel `source(x, y)` returns as a flat pixel index
 * (sy * width + sx), or black where it returns -1.
 */
export function remapPixels(img: RgbImage, ow: number, oh: number, source: (x: number, y: number) => number): RgbImage {
  const { data } = img;
  const out = new Uint8Array(ow * oh * 3);
  for (let y = 0, o = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++, o += 3) {
      const p = source(x, y);
      if (p < 0) continue;
      const s = p * 3;
      out[o] = data[s];
      out[o + 1] = data[s + 1];
      out[o + 2] = data[s + 2];
    }
  }
  return { width: ow, height: oh, data: out };
}

/** Throws ImageError unless `img` is a well-formed RgbImage; `what` names it in the message. */
export function checkRgbImage(img: RgbImage, what = 'image'): void {
  if (img === null || typeof img !== 'object')
    throw new ImageError(`${what}: expected an RgbImage {width, height, data}, got ${img === null ? 'null' : typeof img}`);
  const { width, height, data } = img;
  if (!Number.isSafeInteger(width) || width < 1 || !Number.isSafeInteger(height) || height < 1) {
    throw new ImageError(`${what}: width and height must be positive integers, got ${width} x ${height}`);
  }
  if (!(data instanceof Uint8Array)) throw new ImageError(`${what}: data must be a Uint8Array (RGB, HWC)`);
  if (data.length !== width * height * 3) {
    throw new ImageError(`${what}: data has ${data.length} bytes, expected ${width} x ${height} x 3 = ${width * height * 3}`);
  }
}
