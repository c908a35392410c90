/**
 * EXIF orientation (EXIF 2.32 tag 0x0112), applied the way PIL's `ImageOps.exif_transpose` does,
 * and a minimal reader of TIFF-structured tags (TIFF 6.0 section 2) for it.
 *
 * timm and torchvision open images with `Image.open(f).convert('RGB')`, which ignores the tag, so
 * decodeImage only applies it when asked.
 */
import { RgbImage, remapPixels } from './image';

/**
 * The value of a SHORT or LONG tag in the first IFD of a TIFF-structured block (a TIFF file, or an
 * EXIF block), or null when absent or unreadable.
 */
export function tiffTag(tiff: Uint8Array | null, tag: number): number | null {
  if (tiff === null || tiff.length < 8) return null;
  const dv = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const order = dv.getUint16(0);
  if (order !== 0x4949 && order !== 0x4d4d) return null;
  const le = order === 0x4949;
  if (dv.getUint16(2, le) !== 42) return null;
  const ifd = dv.getUint32(4, le);
  if (ifd + 2 > tiff.length) return null;
  const count = dv.getUint16(ifd, le);
  for (let k = 0; k < count; k++) {
    const e = ifd + 2 + 12 * k;
    if (e + 12 > tiff.length) return null;
    if (dv.getUint16(e, le) !== tag) continue;
    const type = dv.getUint16(e + 2, le);
    if (type === 3) return dv.getUint16(e + 8, le); // SHORT, left-justified in the value field
    if (type === 4) return dv.getUint32(e + 8, le);
    return null;
  }
  return null;
}

/** The Orientation tag (1-8) of a TIFF-structured EXIF block, or 1 when absent or unreadable. */
export function exifOrientation(tiff: Uint8Array | null): number {
  const v = tiffTag(tiff, 0x0112);
  return v !== null && v >= 1 && v <= 8 ? v : 1;
}

/**
 * Rotate/flip an image so that orientation 1 results: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
 * 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
 */
export function applyOrientation(img: RgbImage, orientation: number): RgbImage {
  if (orientation < 2 || orientation > 8) return img;
  const { width: W, height: H } = img;
  const swap = orientation >= 5;
  const ow = swap ? H : W;
  const oh = swap ? W : H;
  return remapPixels(img, ow, oh, (x, y) => {
    switch (orientation) {
      case 2:
        return y * W + (W - 1 - x);
      case 3:
        return (H - 1 - y) * W + (W - 1 - x);
      case 4:
        return (H - 1 - y) * W + x;
      case 5:
        return x * W + y;
      case 6:
        return (H - 1 - x) * W + y;
      case 7:
        return (H - 1 - x) * W + (W - 1 - y);
      default:
        return x * W + (W - 1 - y); // 8
    }
  });
}
