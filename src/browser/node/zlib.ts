/**
 * The browser build's `zlib`: `inflateRawSync` for deflated zip entries (weights-converter/zip.ts).
 * A page has no synchronous inflate, so src/browser/convert.ts inflates every deflated entry first
 * with the platform's DecompressionStream('deflate-raw') and registers the result here, keyed by the
 * compressed bytes; the synchronous reader then finds it. No `crc32` export: zip.ts falls back to
 * its table CRC-32.
 */
import { Buffer } from 'buffer';

const inflated = new Map<string, Uint8Array>();

/** FNV-1a over the bytes plus their length: identifies one compressed entry. */
function keyOf(raw: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < raw.length; i++) h = Math.imul(h ^ raw[i], 0x01000193);
  return `${raw.length}:${(h >>> 0).toString(16)}`;
}

/** Registers the inflated form of `raw` (a raw DEFLATE stream). */
export function putInflated(raw: Uint8Array, out: Uint8Array): void {
  inflated.set(keyOf(raw), out);
}

/** Drops every registered entry. */
export function clearInflated(): void {
  inflated.clear();
}

export function inflateRawSync(raw: Uint8Array, opts: { maxOutputLength?: number } = {}): Buffer {
  const out = inflated.get(keyOf(raw));
  if (out === undefined) throw new Error('deflated data was not pre-inflated (read checkpoints in the browser through convertCheckpointBytes)');
  if (opts.maxOutputLength !== undefined && out.length > opts.maxOutputLength) {
    throw new RangeError(`inflated size ${out.length} exceeds maxOutputLength ${opts.maxOutputLength}`);
  }
  return Buffer.from(out.buffer, out.byteOffset, out.length);
}
export const crc32: undefined = undefined;
