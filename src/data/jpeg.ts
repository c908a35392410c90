/**
 * JPEG helpers around jimp's decoder (jpeg-js), so that decoded pixels match what PIL (libjpeg-turbo)
 * gives a timm/torchvision pipeline:
 *
 * - a marker walk (ITU T.81 B.1) that reads the frame header, the JFIF/Adobe colour-space markers
 *   and the EXIF block, and tells a truncated file from a corrupt one;
 * - libjpeg-turbo's chroma upsampling ("fancy", jdsample.c: triangle filter h2v1, h1v2, h2v2) and
 *   its fixed-point YCbCr->RGB conversion (jdcolor.c), applied to the component planes jpeg-js
 *   decodes. jpeg-js on its own replicates chroma samples and converts in floating point: 0.5-1.2
 *   levels of mean error against PIL in our tests (up to 12 at colour edges); with these steps only
 *   IDCT rounding differences remain (0.1-0.15 mean, 3 at worst).
 *
 * Internal to src/data: decode.ts is the public entry point.
 */

/** A frame component: id and sampling factors (SOF). */
export interface JpegComponent {
  id: number;
  h: number;
  v: number;
}

/** What the marker walk learned about a JPEG file. */
export interface JpegInfo {
  width: number;
  height: number;
  precision: number;
  components: JpegComponent[];
  /** The SOF marker (0xc0 baseline, 0xc2 progressive, ...); 0 if none was found. */
  sof: number;
  jfif: boolean;
  /** Adobe APP14 transform flag (0: RGB/CMYK, 1: YCbCr, 2: YCCK), or -1 without an Adobe marker. */
  adobeTransform: number;
  /** Byte range of the Adobe APP14 segment (marker included), for stripping it. */
  adobeSegment: [number, number] | null;
  /** The TIFF-structured EXIF block of APP1, if any. */
  exif: Uint8Array | null;
  /** Whether the file ends before its end-of-image marker (or inside a header segment). */
  truncated: boolean;
  /** Bytes of entropy-coded data after the start-of-scan headers, all scans together. */
  scanBytes: number;
}

const SOF_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** Walk the markers of a JPEG file (SOI already checked by the caller). Never throws. */
export function parseJpeg(buf: Uint8Array): JpegInfo {
  const info: JpegInfo = {
    width: 0,
    height: 0,
    precision: 8,
    components: [],
    sof: 0,
    jfif: false,
    adobeTransform: -1,
    adobeSegment: null,
    exif: null,
    truncated: true,
    scanBytes: 0,
  };
  const n = buf.length;
  let pos = 2;
  while (pos < n) {
    if (buf[pos] !== 0xff) {
      pos++; // garbage between segments: libjpeg skips it with a warning
      continue;
    }
    while (pos < n && buf[pos] === 0xff) pos++; // fill bytes
    if (pos >= n) break;
    const marker = buf[pos++];
    if (marker === 0xd9) {
      info.truncated = false;
      break;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8) || marker === 0x00) continue; // standalone
    if (pos + 2 > n) break;
    const len = (buf[pos] << 8) | buf[pos + 1];
    const start = pos - 2;
    const end = pos + len;
    if (len < 2 || end > n) break;
    const seg = buf.subarray(pos + 2, end);
    if (SOF_MARKERS.has(marker) && info.sof === 0 && seg.length >= 6) {
      info.sof = marker;
      info.precision = seg[0];
      info.height = (seg[1] << 8) | seg[2];
      info.width = (seg[3] << 8) | seg[4];
      const nc = seg[5];
      for (let c = 0; c < nc && 6 + 3 * c + 2 < seg.length; c++) {
        const hv = seg[7 + 3 * c];
        info.components.push({ id: seg[6 + 3 * c], h: hv >> 4, v: hv & 15 });
      }
    } else if (marker === 0xe0 && seg.length >= 5 && String.fromCharCode(...seg.subarray(0, 5)) === 'JFIF\0') {
      info.jfif = true;
    } else if (marker === 0xe1 && info.exif === null && seg.length > 6 && String.fromCharCode(...seg.subarray(0, 6)) === 'Exif\0\0') {
      info.exif = seg.subarray(6);
    } else if (marker === 0xee && seg.length >= 12 && String.fromCharCode(...seg.subarray(0, 5)) === 'Adobe') {
      info.adobeTransform = seg[11];
      info.adobeSegment = [start, end];
    }
    pos = end;
    if (marker === 0xda) {
      // Entropy-coded data: runs to the next marker that is not a stuffed 0xff00 or a restart marker.
      const scanStart = pos;
      while (pos + 1 < n && !(buf[pos] === 0xff && buf[pos + 1] !== 0x00 && !(buf[pos + 1] >= 0xd0 && buf[pos + 1] <= 0xd7))) pos++;
      info.scanBytes += pos - scanStart;
      if (pos + 1 >= n) break;
    }
  }
  return info;
}

/**
 * The least entropy-coded data a JPEG of this size can have. Huffman codes are at least one bit
 * long (T.81 C): in a sequential (baseline) scan every 8x8 block of every component costs at least
 * two, its DC difference and its end-of-block; in a progressive file at least one, in the scan that
 * codes its DC coefficient (AC scans can skip runs of blocks with one EOBRUN). A header claiming more
 * blocks than the data can hold is a corrupt file, refused before the decoder allocates for it.
 */
export function jpegMinScanBytes(info: JpegInfo): number {
  if (info.components.length === 0) return 0;
  const maxH = Math.max(...info.components.map((c) => c.h || 1));
  const maxV = Math.max(...info.components.map((c) => c.v || 1));
  let blocks = 0;
  for (const c of info.components) {
    const w = Math.ceil((info.width * (c.h || 1)) / maxH);
    const h = Math.ceil((info.height * (c.v || 1)) / maxV);
    blocks += Math.ceil(w / 8) * Math.ceil(h / 8);
  }
  const bitsPerBlock = info.sof === 0xc2 || info.sof === 0xc6 || info.sof === 0xca || info.sof === 0xce ? 1 : 2;
  return Math.floor((blocks * bitsPerBlock) / 8);
}

/**
 * The colour space libjpeg assumes for a 3-component file (jdapimin.c default_decompress_parms):
 * JFIF means YCbCr; an Adobe marker says it outright; otherwise component ids 'R','G','B' mean RGB.
 */
export function jpegIsYCbCr(info: JpegInfo): boolean {
  if (info.jfif) return true;
  if (info.adobeTransform >= 0) return info.adobeTransform !== 0;
  const [a, b, c] = info.components.map((k) => k.id);
  return !(a === 0x52 && b === 0x47 && c === 0x42);
}

// libjpeg jdcolor.c build_ycc_rgb_table: 16-bit fixed point, tables indexed by the 8-bit sample.
const SCALEBITS = 16;
const ONE_HALF = 1 << (SCALEBITS - 1);
const FIX = (x: number): number => Math.floor(x * (1 << SCALEBITS) + 0.5);
const CR_R = new Int32Array(256);
const CB_B = new Int32Array(256);
const CR_G = new Int32Array(256);
const CB_G = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  CR_R[i] = (FIX(1.402) * x + ONE_HALF) >> SCALEBITS;
  CB_B[i] = (FIX(1.772) * x + ONE_HALF) >> SCALEBITS;
  CR_G[i] = -FIX(0.71414) * x;
  CB_G[i] = -FIX(0.34414) * x + ONE_HALF;
}

const clamp8 = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);

/**
 * Upsample one component plane (pw x ph samples) to the full image size (width x height) the way
 * libjpeg-turbo does with do_fancy_upsampling (its default, and PIL's): triangle filters for the
 * 2:1 cases, replication otherwise. Edge samples are replicated, as libjpeg's context rows are.
 */
function upsamplePlane(plane: Uint8Array, pw: number, ph: number, rx: number, ry: number, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const fancyH = rx === 2 && pw > 2; // libjpeg: fancy h2 only for downsampled_width > 2
  if (rx === 2 && ry === 2 && fancyH) {
    const colsum = new Int32Array(pw);
    for (let y = 0; y < height; y++) {
      const j = y >> 1;
      const nb = y & 1 ? Math.min(j + 1, ph - 1) : Math.max(j - 1, 0); // row below (odd) or above (even)
      const r0 = j * pw;
      const r1 = nb * pw;
      for (let i = 0; i < pw; i++) colsum[i] = 3 * plane[r0 + i] + plane[r1 + i];
      const o = y * width;
      for (let i = 0; i < pw; i++) {
        const c = 3 * colsum[i];
        const x = 2 * i;
        out[o + x] = (c + colsum[i > 0 ? i - 1 : 0] + 8) >> 4;
        if (x + 1 < width) out[o + x + 1] = (c + colsum[i + 1 < pw ? i + 1 : pw - 1] + 7) >> 4;
      }
    }
    return out;
  }
  if (rx === 2 && ry === 1 && fancyH) {
    for (let y = 0; y < height; y++) {
      const r = y * pw;
      const o = y * width;
      for (let i = 0; i < pw; i++) {
        const c = 3 * plane[r + i];
        const x = 2 * i;
        out[o + x] = (c + plane[r + (i > 0 ? i - 1 : 0)] + 1) >> 2;
        if (x + 1 < width) out[o + x + 1] = (c + plane[r + (i + 1 < pw ? i + 1 : pw - 1)] + 2) >> 2;
      }
    }
    return out;
  }
  if (rx === 1 && ry === 2) {
    for (let y = 0; y < height; y++) {
      const j = y >> 1;
      const nb = y & 1 ? Math.min(j + 1, ph - 1) : Math.max(j - 1, 0);
      const bias = y & 1 ? 2 : 1;
      const r0 = j * pw;
      const r1 = nb * pw;
      const o = y * width;
      for (let x = 0; x < width; x++) out[o + x] = (3 * plane[r0 + x] + plane[r1 + x] + bias) >> 2;
    }
    return out;
  }
  for (let y = 0; y < height; y++) {
    const r = Math.floor(y / ry) * pw;
    const o = y * width;
    for (let x = 0; x < width; x++) out[o + x] = plane[r + Math.floor(x / rx)];
  }
  return out;
}

/**
 * From jpeg-js's output for a 3-component file decoded without its colour transform (components
 * replicated to full size, interleaved, `channels` bytes a pixel), rebuild libjpeg-turbo's RGB:
 * take each component back to its own sampling grid, upsample it the libjpeg way and, for YCbCr
 * files, convert with libjpeg's tables. Returns RGB, HWC.
 */
export function libjpegColour(raw: Uint8Array, channels: number, width: number, height: number, info: JpegInfo, ycbcr: boolean): Uint8Array {
  const comps = info.components;
  const maxH = Math.max(...comps.map((c) => c.h));
  const maxV = Math.max(...comps.map((c) => c.v));
  const full: Uint8Array[] = [];
  for (let c = 0; c < 3; c++) {
    const rx = maxH / comps[c].h;
    const ry = maxV / comps[c].v;
    const plane1 = (rx === 1 || rx === 2) && (ry === 1 || ry === 2);
    if (plane1 && rx === 1 && ry === 1) {
      const p = new Uint8Array(width * height);
      for (let k = 0; k < p.length; k++) p[k] = raw[k * channels + c];
      full.push(p);
    } else if (plane1) {
      // libjpeg: downsampled size = ceil(image size * factor / max factor). jpeg-js replicated sample
      // (i, j) of the plane to pixels [i*rx, i*rx+rx) x [j*ry, j*ry+ry).
      const pw = Math.ceil(width / rx);
      const ph = Math.ceil(height / ry);
      const p = new Uint8Array(pw * ph);
      for (let j = 0; j < ph; j++) for (let i = 0; i < pw; i++) p[j * pw + i] = raw[(j * ry * width + i * rx) * channels + c];
      full.push(upsamplePlane(p, pw, ph, rx, ry, width, height));
    } else {
      // Other ratios (rare): jpeg-js's replication, which is libjpeg's int_upsample for integer ratios.
      const p = new Uint8Array(width * height);
      for (let k = 0; k < p.length; k++) p[k] = raw[k * channels + c];
      full.push(p);
    }
  }
  const out = new Uint8Array(width * height * 3);
  const [p0, p1, p2] = full;
  if (!ycbcr) {
    for (let k = 0; k < width * height; k++) {
      out[3 * k] = p0[k];
      out[3 * k + 1] = p1[k];
      out[3 * k + 2] = p2[k];
    }
    return out;
  }
  for (let k = 0; k < width * height; k++) {
    const y = p0[k];
    const cb = p1[k];
    const cr = p2[k];
    out[3 * k] = clamp8(y + CR_R[cr]);
    out[3 * k + 1] = clamp8(y + ((CB_G[cb] + CR_G[cr]) >> SCALEBITS));
    out[3 * k + 2] = clamp8(y + CB_B[cb]);
  }
  return out;
}
