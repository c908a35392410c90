/**
 * GIF helper around jimp's decoder (omggif), so that the first frame matches PIL 9's
 * `Image.open(f).convert('RGB')`: PIL keeps the palette index of transparent pixels (and fills the
 * screen outside the first frame with the transparency index, or index 0), so they take that
 * palette colour, where omggif leaves them zero.
 *
 * Internal to src/data: decode.ts is the public entry point.
 */

/** The colour PIL gives pixels the first frame leaves transparent or undrawn, or null if unreadable. */
export function gifUndrawnColour(buf: Uint8Array): [number, number, number] | null {
  if (buf.length < 13) return null;
  const packed = buf[10];
  let pos = 13;
  let global: Uint8Array | null = null;
  if (packed & 0x80) {
    const size = 3 * (1 << ((packed & 7) + 1));
    global = buf.subarray(pos, pos + size);
    pos += size;
  }
  let trans = -1;
  while (pos < buf.length) {
    const b = buf[pos++];
    if (b === 0x21) {
      const label = buf[pos++];
      if (label === 0xf9 && buf[pos] >= 4 && pos + 4 < buf.length && buf[pos + 1] & 1) trans = buf[pos + 4];
      while (pos < buf.length && buf[pos] !== 0) pos += buf[pos] + 1; // sub-blocks
      pos++;
    } else if (b === 0x2c) {
      if (pos + 9 > buf.length) return null;
      const ipacked = buf[pos + 8];
      let palette = global;
      if (ipacked & 0x80) palette = buf.subarray(pos + 9, pos + 9 + 3 * (1 << ((ipacked & 7) + 1)));
      const idx = trans >= 0 ? trans : 0;
      if (palette === null) return null;
      if (3 * idx + 2 >= palette.length) return [0, 0, 0];
      return [palette[3 * idx], palette[3 * idx + 1], palette[3 * idx + 2]];
    } else {
      return null;
    }
  }
  return null;
}
