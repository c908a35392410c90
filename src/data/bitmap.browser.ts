/**
 * Images in a page -> RgbImage, the 8-bit RGB HWC pixels src/data's Pillow-exact resize and eval
 * transform take. The browser decodes (createImageBitmap); we read the pixels back through a 2D
 * canvas with colour management and alpha premultiplication off, so a PNG gives the same bytes as
 * PIL's `Image.open(f).convert('RGB')`: alpha is dropped, not composited.
 *
 * NOTE: a canvas stores premultiplied alpha; for pixels that are neither opaque nor fully
 * transparent the colour read back can be off by a level or so (fully transparent ones read as 0).
 * JPEGs are decoded by the browser's libjpeg-turbo (IDCT and chroma upsampling may differ from
 * PIL's by a level, as in Node).
 */
import { RgbImage } from './image';
import { ImageError } from '../errors';

/** What a page can hand in: encoded bytes, a Blob/File, a URL, or anything createImageBitmap takes. */
export type BrowserImageInput = string | URL | Blob | ArrayBuffer | Uint8Array | ImageData | ImageBitmapSource | RgbImage;

function isRgbImage(x: unknown): x is RgbImage {
  const r = x as Partial<RgbImage> | null;
  return typeof r === 'object' && r !== null && r.data instanceof Uint8Array && typeof r.width === 'number' && typeof r.height === 'number';
}

/** RGBA (row-major, 4 bytes a pixel) -> RGB, dropping alpha. */
export function rgbaToRgb(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number): RgbImage {
  const n = width * height;
  if (rgba.length !== n * 4) throw new ImageError(`RGBA data has ${rgba.length} bytes, expected ${width} x ${height} x 4`);
  const data = new Uint8Array(n * 3);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    data[i * 3] = rgba[j];
    data[i * 3 + 1] = rgba[j + 1];
    data[i * 3 + 2] = rgba[j + 2];
  }
  return { width, height, data };
}

type Canvas2D = OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;

function canvas2d(width: number, height: number): Canvas2D {
  if (typeof OffscreenCanvas !== 'undefined') {
    const ctx = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
    if (ctx) return ctx;
  }
  const c = document.createElement('canvas');
  c.width = width;
  c.height = height;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new ImageError('this browser gives no 2D canvas context');
  return ctx;
}

/** The pixels of a decoded bitmap. */
export function bitmapToRgb(bitmap: ImageBitmap): RgbImage {
  const { width, height } = bitmap;
  if (!(width > 0 && height > 0)) throw new ImageError('image has zero size');
  const ctx = canvas2d(width, height);
  ctx.drawImage(bitmap, 0, 0);
  return rgbaToRgb(ctx.getImageData(0, 0, width, height, { colorSpace: 'srgb' }).data, width, height);
}

async function toBlob(input: string | URL | ArrayBuffer | Uint8Array, where: string): Promise<Blob> {
  if (typeof input === 'string' || input instanceof URL) {
    let res: Response;
    try {
      res = await fetch(input);
    } catch (e) {
      throw new ImageError(`image ${where}: cannot fetch (${(e as Error).message}; a cross-origin image needs CORS headers)`);
    }
    if (!res.ok) throw new ImageError(`image ${where}: HTTP ${res.status} ${res.statusText}`);
    return res.blob();
  }
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  if (bytes.length === 0) throw new ImageError(`image ${where}: empty file`);
  return new Blob([bytes as Uint8Array<ArrayBuffer>]);
}

/**
 * Decodes any image a page holds to RgbImage (8-bit RGB, HWC).
 *
 *   const img = await decodeBrowserImage(fileInput.files[0]);     // or a URL, bytes, <img>, ImageData
 *
 * `exifOrientation`: rotate by the EXIF tag (default false, like PIL's Image.open).
 */
export async function decodeBrowserImage(input: BrowserImageInput, opts: { name?: string; exifOrientation?: boolean } = {}): Promise<RgbImage> {
  const name = opts.name;
  if (isRgbImage(input)) return input;
  if (typeof ImageData !== 'undefined' && input instanceof ImageData) return rgbaToRgb(input.data, input.width, input.height);
  const where = name ?? (typeof input === 'string' ? input : input instanceof URL ? input.href : input instanceof File ? input.name : '<image>');
  const source: ImageBitmapSource =
    typeof input === 'string' || input instanceof URL || input instanceof ArrayBuffer || input instanceof Uint8Array ? await toBlob(input, where) : input;
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(source, {
      colorSpaceConversion: 'none',
      premultiplyAlpha: 'none',
      // EXIF orientation is ignored by default, as PIL and timm do.
      imageOrientation: opts.exifOrientation ? 'from-image' : 'none',
    });
  } catch (e) {
    throw new ImageError(`image ${where}: cannot decode (${(e as Error).message})`);
  }
  try {
    return bitmapToRgb(bitmap);
  } finally {
    bitmap.close();
  }
}
