/**
 * The `Buffer` global for the browser build (esbuild `inject`): the converter's readers use
 * Buffer's little-endian accessors and latin1/utf8 decoding; the `buffer` package implements them
 * on Uint8Array.
 */
export { Buffer } from 'buffer';
