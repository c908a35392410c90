/**
 * PNG helpers around jimp's decoder (pngjs), so that decoded pixels equal PIL's
 * `Image.open(f).convert('RGB')` exactly:
 *
 * - a chunk walk (PNG spec section 5) that reads IHDR, tRNS and eXIf and tells a truncated file from
 *   a corrupt one;
 * - 16-bit samples keep their high byte, as PIL's "RGB;16B" unpackers do (pngjs rounds v * 255 / 65535
 *   instead, which is one level off for about 1 sample in 8);
 * - a tRNS colour key only makes pixels transparent: convert('RGB') keeps their colour, where pngjs
 *   zeroes it.
 *
 * Internal to src/data: decode.ts is the public entry point.
 */

/** What the chunk walk learned about a PNG file. */
export interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  /** 0 gray, 2 RGB, 3 palette, 4 gray + alpha, 6 RGB + alpha. */
  colorType: number;
  /** The tRNS colour key of a gray (1 value) or RGB (3 values) image, in raw sample units. */
  transColor: number[] | null;
  /** The eXIf chunk (TIFF-structured EXIF), if any. */
  exif: Uint8Array | null;
  /** Whether the file ends before its IEND chunk. */
  truncated: boolean;
}

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Walk the chunks of a PNG file (signature already checked). Never throws. */
export function parsePng(buf: Uint8Array): PngInfo {
  const info: PngInfo = { width: 0, height: 0, bitDepth: 0, colorType: 0, transColor: null, exif: null, truncated: true };
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 8;
  while (pos + 8 <= buf.length) {
    const len = dv.getUint32(pos);
    const type = String.fromCharCode(buf[pos + 4], buf[pos + 5], buf[pos + 6], buf[pos + 7]);
    const data = pos + 8;
    if (data + len + 4 > buf.length) break;
    if (type === 'IHDR' && len >= 13) {
      info.width = dv.getUint32(data);
      info.height = dv.getUint32(data + 4);
      info.bitDepth = buf[data + 8];
      info.colorType = buf[data + 9];
    } else if (type === 'tRNS') {
      if (info.colorType === 0 && len >= 2) info.transColor = [dv.getUint16(data)];
      else if (info.colorType === 2 && len >= 6) info.transColor = [dv.getUint16(data), dv.getUint16(data + 2), dv.getUint16(data + 4)];
    } else if (type === 'eXIf') {
      info.exif = buf.subarray(data, data + len);
    } else if (type === 'IEND') {
      info.truncated = false;
      break;
    }
    pos = data + len + 4;
  }
  return info;
}

/**
 * RGB from pngjs's RGBA output. `rgba` holds 8-bit samples, or for 16-bit files the raw 16-bit
 * samples (pngjs with skipRescale), which keep their high byte.
 */
export function pngToRgb(rgba: ArrayLike<number>, width: number, height: number, info: PngInfo): Uint8Array {
  const n = width * height;
  const out = new Uint8Array(n * 3);
  const shift = info.bitDepth === 16 ? 8 : 0;
  for (let k = 0; k < n; k++) {
    out[3 * k] = rgba[4 * k] >> shift;
    out[3 * k + 1] = rgba[4 * k + 1] >> shift;
    out[3 * k + 2] = rgba[4 * k + 2] >> shift;
  }
  const key = info.transColor;
  if (key !== null && (info.colorType === 0 || info.colorType === 2)) {
    // Without an alpha channel, alpha 0 marks exactly the pixels equal to the colour key, whose colour
    // pngjs zeroed. Put the key back, scaled the way pngjs/PIL scale the other samples.
    const scale = (v: number): number => (info.bitDepth === 16 ? v >> 8 : info.bitDepth < 8 ? Math.round((v * 255) / ((1 << info.bitDepth) - 1)) : v);
    const rgb = key.length === 1 ? [scale(key[0]), scale(key[0]), scale(key[0])] : key.map(scale);
    for (let k = 0; k < n; k++) {
      if (rgba[4 * k + 3] === 0) {
        out[3 * k] = rgb[0];
        out[3 * k + 1] = rgb[1];
        out[3 * k + 2] = rgb[2];
      }
    }
  }
  return out;
}
