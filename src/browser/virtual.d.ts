/** Modules that only exist inside the browser bundle (scripts/build-browser.js provides them). */
declare module 'convnext-tfjs:simd-binaries' {
  /** dist/src/backend/wasm_simd/*.wasm by file name. */
  export const SIMD_BINARIES: Readonly<Record<string, Uint8Array>>;
}
