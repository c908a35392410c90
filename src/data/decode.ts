/**
 * Image decoding with jimp's codecs, giving the pixels a timm/torchvision pipeline gets from PIL's
 * `Image.open(f).convert('RGB')`:
 *
 * - PNG (1-16 bit; gray, palette, RGB, with or without alpha or tRNS): exactly PIL's values.
 * - JPEG (baseline and progressive; gray, YCbCr, RGB): PIL's chroma upsampling and colour
 *   conversion (libjpeg-turbo's), so only IDCT rounding differs (0.1-0.15 levels mean, 3 at worst,
 *   on the test photos). CMYK/YCCK files use jpeg-js's own conversion.
 * - BMP, TIFF, GIF (first frame): PIL's values for the common variants.
 * - Alpha is dropped, not composited: convert('RGB') keeps the colour stored under transparent
 *   pixels, and so do we.
 * - Grayscale becomes R = G = B.
 * - The EXIF orientation tag is ignored, as in PIL/timm, unless `exifOrientation: true`
 *   (then it is applied like PIL's `ImageOps.exif_transpose`).
 *
 * Known divergence: 16-bit grayscale PNG keeps the high byte of each sample (TIFF: utif2's 8-bit
 * conversion), where PIL (modes I, I;16) clips the 16-bit values to 255 on convert('RGB'), which
 * turns most such images white.
 */
import { defaultFormats } from 'jimp';
import { FileReadError, readRegularFile } from '../util/fs';
import { RgbImage } from './image';
import { ImageError } from '../errors';
import { gifUndrawnColour } from './gif';
import { JpegInfo, jpegIsYCbCr, jpegMinScanBytes, libjpegColour, parseJpeg } from './jpeg';
import { applyOrientation, exifOrientation, tiffTag } from './orientation';
import { PNG_SIGNATURE, PngInfo, parsePng, pngDataFits, pngDataProblem, pngToRgb } from './png';

/** Formats decodeImage reads. */
export type ImageFormat = 'jpeg' | 'png' | 'gif' | 'bmp' | 'tiff';

/** File extensions taken as images when a directory is listed (the formats decodeImage reads). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.bmp', '.gif', '.tif', '.tiff'];

/** Options of decodeImage. */
export interface DecodeOptions {
  /**
   * Rotate/flip the image by its EXIF Orientation tag, like PIL's `ImageOps.exif_transpose`
   * (JPEG APP1, PNG eXIf, TIFF). Default false: timm and torchvision ignore the tag.
   */
  exifOrientation?: boolean;
  /** Name of the image in error messages when `input` is bytes (default '<buffer>'). */
  name?: string;
  /**
   * Largest image decoded, in pixels (width x height), checked from the file's header before any
   * decoding. Default MAX_IMAGE_PIXELS (89,478,485: Pillow's Image.MAX_IMAGE_PIXELS, about
   * 9459 x 9459); Infinity turns the check off.
   */
  maxImagePixels?: number;
  /** @deprecated The same limit in megapixels; `maxImagePixels` wins when both are given. */
  maxMegapixels?: number;
}

/** Pillow's Image.MAX_IMAGE_PIXELS: the default limit of decodeImage's `maxImagePixels`. */
export const MAX_IMAGE_PIXELS = 89_478_485;

/** The pixel limit `options` ask for, validated (an error names the option). */
export function resolveMaxImagePixels(options: Pick<DecodeOptions, 'maxImagePixels' | 'maxMegapixels'> = {}): number {
  const v = options.maxImagePixels ?? (options.maxMegapixels !== undefined ? options.maxMegapixels * 1e6 : MAX_IMAGE_PIXELS);
  if (!(v >= 1)) {
    const name = options.maxImagePixels !== undefined ? 'maxImagePixels' : 'maxMegapixels';
    throw new ImageError(`${name} must be a positive number of pixels (or Infinity), got ${options.maxImagePixels ?? options.maxMegapixels}`);
  }
  return v;
}

/**
 * A decoder's own error text in plain words: truncated, corrupt (which part), unsupported variant.
 * The decoder's text is kept as the ImageError's `detail`.
 */
export function plainDecodeReason(format: ImageFormat, message: string): string {
  const f = format.toUpperCase();
  const m = message.toLowerCase();
  if (/crc/.test(m)) return `corrupt ${f}: a chunk is damaged (its checksum does not match)`;
  if (/filter type|not in palette|palette not found|extra data|content at end/.test(m)) return `corrupt ${f}: the image data is damaged`;
  if (
    /unsupported|not supported|not implemented|unrecogni[sz]ed (depth|colou?r)|unknown (compression|format|type|colou?r)|invalid (bit depth|colou?r type)/.test(
      m,
    )
  ) {
    return `unsupported ${f} variant (${message})`;
  }
  if (
    /ran out of data|should not go down|unexpected end|end of (file|data|stream|buffer)|out of range|outside|offset|typed array length|too short|shorter than|eof|beyond|exceeds the (buffer|length)/.test(
      m,
    )
  ) {
    return `truncated or corrupt ${f}: the image data ends early`;
  }
  if (/inflate|zlib|incorrect header check|invalid (distance|block|code|stored|literal)|huffman|marker|lzw/.test(m))
    return `corrupt ${f}: the compressed image data is damaged`;
  return `corrupt ${f}: the decoder could not read it`;
}

/** The text of anything a decoder threw (some throw strings). */
function thrownText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The format of encoded image bytes from their signature, or a description of what they are instead. */
export function sniffImageFormat(bytes: Uint8Array): { format: ImageFormat } | { unsupported: string } {
  const b = bytes;
  const ascii = (start: number, end: number): string => String.fromCharCode(...b.subarray(start, Math.min(end, b.length)));
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return { format: 'jpeg' };
  if (b.length >= 8 && PNG_SIGNATURE.every((v, k) => b[k] === v)) return { format: 'png' };
  if (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a') return { format: 'gif' };
  if (ascii(0, 2) === 'BM') return { format: 'bmp' };
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return { format: 'tiff' };
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return { unsupported: 'WebP' };
  if (ascii(4, 8) === 'ftyp') {
    const brand = ascii(8, 12);
    if (brand === 'avif' || brand === 'avis') return { unsupported: 'AVIF' };
    if (['heic', 'heix', 'hevc', 'heim', 'heis', 'mif1', 'msf1'].includes(brand)) return { unsupported: 'HEIF/HEIC' };
  }
  if (ascii(0, 2) === 'II' && b[2] === 0x2b) return { unsupported: 'BigTIFF' };
  if (ascii(4, 8) === 'jP  ' || (b[0] === 0xff && b[1] === 0x4f && b[2] === 0xff && b[3] === 0x51)) return { unsupported: 'JPEG 2000' };
  if ((b[0] === 0xff && b[1] === 0x0a) || ascii(4, 8) === 'JXL ') return { unsupported: 'JPEG XL' };
  if (ascii(0, 4) === 'qoif') return { unsupported: 'QOI' };
  if (ascii(0, 4) === '8BPS') return { unsupported: 'Photoshop PSD' };
  if (ascii(0, 4) === '%PDF') return { unsupported: 'PDF' };
  if (b[0] === 0 && b[1] === 0 && (b[2] === 1 || b[2] === 2) && b[3] === 0) return { unsupported: 'ICO/CUR' };
  if (/^\s*<(\?xml|svg)/i.test(ascii(0, 64))) return { unsupported: 'SVG/XML' };
  const hex = Array.from(b.subarray(0, 8), (v) => v.toString(16).padStart(2, '0')).join(' ');
  return { unsupported: `unknown (first bytes ${hex || 'none'})` };
}

/** What jimp's codecs return: RGBA, 4 samples a pixel (16-bit samples for PNG with skipRescale). */
type Bitmap = { width: number; height: number; data: ArrayLike<number> };
type Decoder = (data: Buffer, options?: Record<string, unknown>) => Bitmap | Promise<Bitmap>;
let decoders: Map<string, Decoder> | null = null;

/** jimp's codec for a MIME type (jimp's default formats, without jimp's own EXIF rotation). */
function codec(mime: string): Decoder {
  if (decoders === null) {
    decoders = new Map();
    for (const make of defaultFormats) {
      const f = make() as unknown as { mime: string; decode?: Decoder };
      if (f.decode) decoders.set(f.mime, f.decode);
    }
  }
  const d = decoders.get(mime);
  if (d === undefined) throw new Error(`jimp has no decoder for ${mime}`);
  return d;
}

/**
 * Run a codec with console.log/warn captured: omggif and utif2 print warnings, and this library
 * stays silent. The codecs are synchronous, so nothing else can log meanwhile.
 */
async function quietly(decode: Decoder, bytes: Buffer, options?: Record<string, unknown>): Promise<{ raw: Bitmap; warnings: string[] }> {
  const warnings: string[] = [];
  const { log, warn } = console;
  const capture = (...args: unknown[]): void => {
    warnings.push(args.map(String).join(' '));
  };
  console.log = capture;
  console.warn = capture;
  let pending: Bitmap | Promise<Bitmap>;
  try {
    pending = decode(bytes, options);
  } finally {
    console.log = log;
    console.warn = warn;
  }
  return { raw: await pending, warnings };
}

/** RGB from an RGBA (4 bytes a pixel) bitmap, dropping alpha. */
function dropAlpha(rgba: ArrayLike<number>, n: number): Uint8Array {
  const out = new Uint8Array(n * 3);
  for (let k = 0; k < n; k++) {
    out[3 * k] = rgba[4 * k];
    out[3 * k + 1] = rgba[4 * k + 1];
    out[3 * k + 2] = rgba[4 * k + 2];
  }
  return out;
}

/** Width and height from a format's header, before decoding, for the size limit; null if unknown. */
function headerSize(format: ImageFormat, b: Uint8Array, jpeg: JpegInfo | null): [number, number] | null {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (format === 'jpeg' && jpeg !== null) return [jpeg.width, jpeg.height];
  if (format === 'png' && b.length >= 24) return [dv.getUint32(16), dv.getUint32(20)];
  if (format === 'gif' && b.length >= 10) return [dv.getUint16(6, true), dv.getUint16(8, true)];
  if (format === 'bmp' && b.length >= 26) return [Math.abs(dv.getInt32(18, true)), Math.abs(dv.getInt32(22, true))];
  if (format === 'tiff') {
    const w = tiffTag(b, 256);
    const h = tiffTag(b, 257);
    return w !== null && h !== null ? [w, h] : null;
  }
  return null;
}

const JPEG_UNSUPPORTED: Record<number, string> = {
  0xc3: 'lossless',
  0xc5: 'hierarchical',
  0xc6: 'hierarchical',
  0xc7: 'hierarchical lossless',
  0xc9: 'arithmetic-coded',
  0xca: 'arithmetic-coded progressive',
  0xcb: 'arithmetic-coded lossless',
  0xcd: 'hierarchical arithmetic-coded',
  0xce: 'hierarchical arithmetic-coded',
  0xcf: 'hierarchical arithmetic-coded lossless',
};

/** Refuses a failed decode with a plain reason, keeping the decoder's text as detail. */
type Fail = (reason: string, detail?: string) => never;

async function decodeJpeg(bytes: Buffer, info: JpegInfo, fail: Fail, maxPixels: number): Promise<RgbImage> {
  if (info.truncated) {
    // PIL (LOAD_TRUNCATED_IMAGES = False) raises "image file is truncated" for these too.
    fail(info.sof === 0 ? 'truncated JPEG (the file ends inside its headers)' : 'truncated JPEG (the file ends before its end-of-image marker)');
  }
  if (info.sof === 0) fail('invalid JPEG (no frame header)');
  if (JPEG_UNSUPPORTED[info.sof] !== undefined) fail(`unsupported JPEG variant: ${JPEG_UNSUPPORTED[info.sof]}`);
  if (info.precision !== 8) fail(`unsupported JPEG variant: ${info.precision}-bit samples`);
  const nc = info.components.length;
  if (nc !== 1 && nc !== 3 && nc !== 4) fail(`unsupported JPEG variant: ${nc} components`);
  const pixels = info.width * info.height;
  const minScan = jpegMinScanBytes(info);
  if (info.scanBytes < minScan) {
    fail(`corrupt JPEG: ${info.scanBytes} bytes of image data cannot hold ${info.width} x ${info.height} pixels (at least ${minScan} needed)`);
  }
  const decode = codec('image/jpeg');
  // jpeg-js's own accounting, bounded by the image size: coefficients (256 bytes a block per
  // component), component planes and the output, with room for its tables.
  const memoryMb = Math.ceil((24 * pixels * Math.max(1, nc)) / 3 / 2 ** 20) + 64;
  const opts = { formatAsRGBA: false, tolerantDecoding: true, maxResolutionInMP: Math.max(1, maxPixels / 1e6), maxMemoryUsageInMB: memoryMb };
  let input = bytes;
  let raw: Bitmap;
  try {
    if (nc === 3) {
      // Ask jpeg-js for the component planes and convert them the libjpeg way. jpeg-js forces its own
      // colour transform when an Adobe marker says YCbCr, so that marker is cut out first.
      if (info.adobeSegment !== null && info.adobeTransform !== 0) {
        const [s, e] = info.adobeSegment;
        input = Buffer.concat([bytes.subarray(0, s), bytes.subarray(e)]);
      }
      ({ raw } = await quietly(decode, input, { ...opts, colorTransform: false }));
    } else {
      ({ raw } = await quietly(decode, input, opts));
    }
  } catch (e) {
    return fail(plainDecodeReason('jpeg', thrownText(e)), thrownText(e));
  }
  const { width, height } = raw;
  const n = width * height;
  let data: Uint8Array;
  if (nc === 3) {
    data = libjpegColour(raw.data as Uint8Array, 3, width, height, info, jpegIsYCbCr(info));
  } else {
    data = raw.data instanceof Uint8Array && raw.data.length === 3 * n ? new Uint8Array(raw.data) : Uint8Array.from(raw.data);
  }
  return { width, height, data };
}

async function decodePng(bytes: Buffer, info: PngInfo, fail: Fail): Promise<RgbImage> {
  if (info.truncated) fail('truncated PNG (the file ends before its IEND chunk)');
  if (info.badCrc !== null) fail(`corrupt PNG: chunk ${info.badCrc} is damaged (its CRC does not match)`);
  const { needed, fits } = pngDataFits(info);
  if (!fits) fail(`corrupt PNG: ${info.idatBytes} bytes of compressed data cannot hold ${info.width} x ${info.height} pixels (${needed} bytes inflated)`);
  const problem = pngDataProblem(bytes, info);
  if (problem !== null) fail(problem.reason, problem.detail);
  let raw: Bitmap;
  try {
    ({ raw } = await quietly(codec('image/png'), bytes, { skipRescale: info.bitDepth === 16 }));
  } catch (e) {
    return fail(plainDecodeReason('png', thrownText(e)), thrownText(e));
  }
  return { width: raw.width, height: raw.height, data: pngToRgb(raw.data, raw.width, raw.height, info) };
}

/**
 * An uncompressed BMP (BI_RGB / BI_BITFIELDS) must hold rows x row size bytes after its pixel-data
 * offset; fewer is a truncated file (the decoder would read past the end).
 */
function bmpTruncated(b: Uint8Array): string | null {
  if (b.length < 34) return 'truncated BMP (the file ends inside its headers)';
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const offset = dv.getUint32(10, true);
  const width = Math.abs(dv.getInt32(18, true));
  const height = Math.abs(dv.getInt32(22, true));
  const bpp = dv.getUint16(28, true);
  const compression = dv.getUint32(30, true);
  if (compression !== 0 && compression !== 3) return null;
  const need = offset + Math.ceil((width * bpp) / 32) * 4 * height;
  return need > b.length ? `truncated BMP: ${width} x ${height} at ${bpp} bits needs ${need} bytes, the file has ${b.length}` : null;
}

async function decodeOther(format: 'gif' | 'bmp' | 'tiff', bytes: Buffer, fail: Fail): Promise<RgbImage> {
  if (format === 'bmp') {
    const t = bmpTruncated(bytes);
    if (t !== null) fail(t);
  }
  let raw: Bitmap;
  let warnings: string[];
  try {
    ({ raw, warnings } = await quietly(codec(`image/${format}`), bytes));
  } catch (e) {
    return fail(plainDecodeReason(format, thrownText(e)), thrownText(e));
  }
  // omggif's only sign of a cut or corrupt LZW stream; PIL raises "image file is truncated" there.
  if (format === 'gif' && warnings.some((w) => w.includes('shorter than expected'))) fail('truncated GIF (the image data ends early)');
  const n = raw.width * raw.height;
  if (!(n > 0) || raw.data.length < 4 * n) fail(`corrupt ${format.toUpperCase()}: no pixel data`);
  const data = dropAlpha(raw.data, n);
  if (format === 'gif') {
    const fill = gifUndrawnColour(bytes);
    if (fill !== null) {
      for (let k = 0; k < n; k++) {
        if (raw.data[4 * k + 3] === 0) {
          data[3 * k] = fill[0];
          data[3 * k + 1] = fill[1];
          data[3 * k + 2] = fill[2];
        }
      }
    }
  }
  return { width: raw.width, height: raw.height, data };
}

/**
 * Decode an image file (a path, or its bytes) to 8-bit RGB, HWC: what PIL's
 * `Image.open(f).convert('RGB')` gives timm and torchvision. Reads JPEG, PNG, BMP, GIF (first
 * frame) and TIFF; alpha is dropped (not composited), grayscale is replicated to three channels.
 * Throws ImageError naming the file and a plain reason: no such file, not a regular file (FIFOs and
 * devices are refused before anything is read), unsupported format or variant, truncated or corrupt
 * data (the decoder's own text in `detail`), or more pixels than `maxImagePixels` (checked from the
 * header, before decoding). Memory is bounded by the image size the header states: a header
 * claiming more pixels than the compressed data can hold is refused as corrupt.
 *
 *   const img = await decodeImage('photos/cat.jpg');      // { width, height, data: Uint8Array }
 */
export async function decodeImage(input: string | Buffer | Uint8Array, options: DecodeOptions = {}): Promise<RgbImage> {
  const where = typeof input === 'string' ? input : (options.name ?? '<buffer>');
  const fail = (reason: string, detail?: string): never => {
    throw new ImageError(`image ${where}: ${reason}`, detail);
  };
  const maxPixels = resolveMaxImagePixels(options);
  let bytes: Buffer;
  if (typeof input === 'string') {
    try {
      bytes = await readRegularFile(input);
    } catch (e) {
      if (e instanceof FileReadError) return fail(e.reason);
      throw e;
    }
  } else if (input instanceof Uint8Array) {
    bytes = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  } else {
    return fail(`expected a path, Buffer or Uint8Array, got ${input === null ? 'null' : typeof input}`);
  }
  if (bytes.length === 0) return fail('empty file');
  const sniffed = sniffImageFormat(bytes);
  if ('unsupported' in sniffed) return fail(`unsupported format ${sniffed.unsupported} (JPEG, PNG, BMP, GIF and TIFF are read)`);
  const format = sniffed.format;
  const tooLarge = (w: number, h: number): never =>
    fail(`too large: ${w} x ${h} pixels is over the limit of ${maxPixels} pixels (maxImagePixels, default Pillow's MAX_IMAGE_PIXELS ${MAX_IMAGE_PIXELS})`);
  const failDecode = (reason: string, detail?: string): never => fail(`cannot decode: ${reason}`, detail);
  try {
    const jpegInfo = format === 'jpeg' ? parseJpeg(bytes) : null;
    const pngInfo = format === 'png' ? parsePng(bytes) : null;
    const size = headerSize(format, bytes, jpegInfo);
    if (size !== null && size[0] * size[1] > maxPixels) tooLarge(size[0], size[1]);

    let img: RgbImage;
    let exif: Uint8Array | null = null;
    if (jpegInfo !== null) {
      img = await decodeJpeg(bytes, jpegInfo, failDecode, maxPixels);
      exif = jpegInfo.exif;
    } else if (pngInfo !== null) {
      img = await decodePng(bytes, pngInfo, failDecode);
      exif = pngInfo.exif;
    } else {
      img = await decodeOther(format as 'gif' | 'bmp' | 'tiff', bytes, failDecode);
      if (format === 'tiff') exif = bytes;
    }
    if (!(img.width > 0 && img.height > 0)) failDecode(`corrupt ${format.toUpperCase()}: zero size`);
    if (img.width * img.height > maxPixels) tooLarge(img.width, img.height); // formats whose header we do not read (some TIFFs)
    if (options.exifOrientation) img = applyOrientation(img, exifOrientation(exif));
    return img;
  } catch (e) {
    if (e instanceof ImageError) throw e;
    // Whatever else a codec or a conversion throws (RangeError, TypeError on a malformed file) is
    // about this file; it must not end a run over many.
    const text = thrownText(e);
    if (/allocation failed|out of memory|invalid array length/i.test(text)) return fail(`too large to decode in memory (${text})`, text);
    return failDecode(plainDecodeReason(format, text), text);
  }
}
