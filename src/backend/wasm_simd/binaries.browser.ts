/**
 * Browser variant of binaries.ts: the SIMD kernel binaries are embedded in the bundle (each is under
 * 3 KB, so a synchronous WebAssembly.Module compile is allowed on a page's main thread), provided by
 * scripts/build-browser.js as the virtual module 'convnext-tfjs:simd-binaries'.
 */
import { SIMD_BINARIES } from 'convnext-tfjs:simd-binaries';

/** Bytes of kernel module `name`; `shared`: the variant importing a shared memory (threaded build). */
export function simdBinary(name: string, shared: boolean): Uint8Array {
  const file = `${name}${shared ? '.shared' : ''}.wasm`;
  const bytes = SIMD_BINARIES[file];
  if (bytes === undefined) throw new Error(`SIMD kernel ${file} is not in this bundle (run npm run build before build:browser)`);
  return bytes;
}
