/**
 * PNG helpers around jimp's decoder (pngjs), so that decoded pixels equal PIL's
 * `Image.open(f).convert('RGB')` exactly:
 *
 * - a chunk walk (PNG spec section 5) that reads IHDR, tRNS and eXIf, checks every chunk's CRC (as
 *   PIL does) and tells a truncated file from a corrupt one;
 * - 16-bit samples keep their high byte, as PIL's "RGB;16B" unpackers do (pngjs rounds v * 255 / 65535
 *   instead, which is one level off for about 1 sample in 8);
 * - a tRNS colour key only makes pixels transparent: convert('RGB') keeps their colour, where pngjs
 *   zeroes it.
 *
 * Internal to src/data: decode.ts is the public entry point.
 */
import * as zlib from 'zlib';
import { RgbImage } from './image';

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
  /** Adam7 interlacing (IHDR). */
  interlaced: boolean;
  /** Total length of the IDAT chunks: the compressed image data. */
  idatBytes: number;
  /** Byte ranges [start, end) of the IDAT payloads, in order. */
  idat: [number, number][];
  /** The first chunk whose CRC does not match its contents (PIL refuses such files), or null. */
  badCrc: string | null;
}

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const CRC_TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c;
}

/** CRC-32 of buf[start, end) (PNG spec annex D). */
export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  let c = ~0;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** Walk the chunks of a PNG file (signature already checked). Never throws. */
export function parsePng(buf: Uint8Array): PngInfo {
  const info: PngInfo = {
    width: 0,
    height: 0,
    bitDepth: 0,
    colorType: 0,
    transColor: null,
    exif: null,
    truncated: true,
    interlaced: false,
    idatBytes: 0,
    idat: [],
    badCrc: null,
  };
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 8;
  while (pos + 8 <= buf.length) {
    const len = dv.getUint32(pos);
    const type = String.fromCharCode(buf[pos + 4], buf[pos + 5], buf[pos + 6], buf[pos + 7]);
    const data = pos + 8;
    if (data + len + 4 > buf.length) break;
    if (info.badCrc === null && crc32(buf, pos + 4, data + len) !== dv.getUint32(data + len)) info.badCrc = type;
    if (type === 'IHDR' && len >= 13) {
      info.width = dv.getUint32(data);
      info.height = dv.getUint32(data + 4);
      info.bitDepth = buf[data + 8];
      info.colorType = buf[data + 9];
      info.interlaced = buf[data + 12] === 1;
    } else if (type === 'IDAT') {
      info.idatBytes += len;
      info.idat.push([data, data + len]);
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

/** Deflate's largest expansion: 258 bytes from 2 bits at best, about 1032:1 (RFC 1951; zlib's tech notes). */
const DEFLATE_MAX_RATIO = 1032;

/**
 * Bytes the inflated image data of a PNG must have (rows of filter byte + samples; Adam7's seven
 * passes for interlaced files), and whether its IDAT chunks could hold them at deflate's best
 * ratio. A header claiming a large image over a few bytes of data is refused before decoding.
 */
export function pngDataFits(info: PngInfo): { needed: number; fits: boolean } {
  const channels = [1, 0, 3, 1, 2, 0, 4][info.colorType] || 4;
  const rowBytes = (w: number) => (w > 0 ? 1 + Math.ceil((w * channels * info.bitDepth) / 8) : 0);
  let needed: number;
  if (!info.interlaced) needed = info.height * rowBytes(info.width);
  else {
    // Adam7 passes: [x0, y0, dx, dy].
    const passes = [
      [0, 0, 8, 8],
      [4, 0, 8, 8],
      [0, 4, 4, 8],
      [2, 0, 4, 4],
      [0, 2, 2, 4],
      [1, 0, 2, 2],
      [0, 1, 1, 2],
    ];
    needed = 0;
    for (const [x0, y0, dx, dy] of passes) {
      const pw = Math.ceil((info.width - x0) / dx);
      const ph = Math.ceil((info.height - y0) / dy);
      if (pw > 0 && ph > 0) needed += ph * rowBytes(pw);
    }
  }
  return { needed, fits: needed <= DEFLATE_MAX_RATIO * info.idatBytes + 64 };
}

/**
 * Inflates the image data (zlib, with output capped at what the header needs) and says, in plain
 * words, what is wrong with it, or null when it is whole. pngjs does not notice a cut or damaged
 * stream and then reads uninitialised memory as pixels (different garbage on every run), so the
 * stream is checked here before pngjs sees it.
 */
export function pngDataProblem(buf: Uint8Array, info: PngInfo): { reason: string; detail?: string } | null {
  const { needed } = pngDataFits(info);
  const z = Buffer.concat(info.idat.map(([a, b]) => buf.subarray(a, b)));
  let out: Buffer;
  try {
    // SYNC_FLUSH: a stream cut short gives what it has instead of throwing, to tell truncated from corrupt.
    out = zlib.inflateSync(z, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: Math.max(needed, 1) });
  } catch (e) {
    const msg = (e as Error).message;
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return null; // more data than needed: pngjs ignores the rest, as PIL does
    return { reason: 'corrupt PNG: the compressed image data is damaged', detail: `zlib: ${msg}` };
  }
  if (out.length < needed) return { reason: `truncated PNG: the image data ends early (${out.length} of ${needed} bytes)` };
  return null;
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

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** An 8-bit RGB PNG of `img` (filter 0 per row, zlib level 9): reconstruction grids, test images. */
export function encodePng(img: RgbImage): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(img.width, 0);
  ihdr.writeUInt32BE(img.height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const stride = img.width * 3;
  const raw = Buffer.alloc((stride + 1) * img.height);
  for (let y = 0; y < img.height; y++) raw.set(img.data.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return Buffer.concat([Buffer.from(PNG_SIGNATURE), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}
