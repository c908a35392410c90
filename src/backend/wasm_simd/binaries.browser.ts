/**
 * Browser variant of binaries.ts: the SIMD kernel binaries are embedded in the bundle (each is under
 * 3 KB, so a synchronous WebAssembly.Module compile is allowed on a page's main thread), provided by
 * scripts/build-browser.js as the virtual module 'convnext-tfjs:simd-binaries'.
 */
import { SIMD_BINARIES } from 'convnext-tfjs:simd-binaries';

/**
 * Bytes of kernel module `name`; `shared`: the variant importing a shared memory (threaded build);
 * `fma`: its fused multiply-add variant where it has one (fma.ts), else the plain one.
 */
export function simdBinary(name: string, shared: boolean, fma = false): Uint8Array {
  const base = `${name}${shared ? '.shared' : ''}`;
  const file = fma && `${base}.fma.wasm` in SIMD_BINARIES ? `${base}.fma.wasm` : `${base}.wasm`;
  const bytes = SIMD_BINARIES[file];
  if (bytes === undefined) throw new Error(`SIMD kernel ${file} is not in this bundle (run npm run build before build:browser)`);
  return bytes;
}
