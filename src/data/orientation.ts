/**
 * EXIF orientation (EXIF 2.32 tag 0x0112), applied the way PIL's `ImageOps.exif_transpose` does,
 * and a minimal reader of TIFF-structured tags (TIFF 6.0 section 2) for it.
 *
 * timm and torchvision open images with `Image.open(f).convert('RGB')`, which ignores the tag, so
 * decodeImage only applies it when asked.
 */
import { RgbImage } from './image';

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
  const { width: W, height: H, data } = img;
  const swap = orientation >= 5;
  const ow = swap ? H : W;
  const oh = swap ? W : H;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let sx: number;
      let sy: number;
      switch (orientation) {
        case 2: sx = W - 1 - x; sy = y; break;
        case 3: sx = W - 1 - x; sy = H - 1 - y; break;
        case 4: sx = x; sy = H - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = H - 1 - x; break;
        case 7: sx = W - 1 - y; sy = H - 1 - x; break;
        default: sx = W - 1 - y; sy = x; break; // 8
      }
      const s = (sy * W + sx) * 3;
      const o = (y * ow + x) * 3;
      out[o] = data[s];
      out[o + 1] = data[s + 1];
      out[o + 2] = data[s + 2];
    }
  }
  return { width: ow, height: oh, data: out };
}
