/**
 * The assembled SIMD kernel binaries (scripts/build-wasm.js: dist/src/backend/wasm_simd/<name>[.shared][.fma].wasm),
 * read from beside this file in Node. The browser build swaps in binaries.browser.ts, which embeds them.
 */
import * as fs from 'fs';
import * as path from 'path';

/**
 * Bytes of kernel module `name`; `shared`: the variant importing a shared memory (threaded build);
 * `fma`: its fused multiply-add variant where it has one (fma.ts), else the plain one.
 */
export function simdBinary(name: string, shared: boolean, fma = false): Uint8Array {
  const file = (f: boolean) => path.join(__dirname, `${name}${shared ? '.shared' : ''}${f ? '.fma' : ''}.wasm`);
  return fs.readFileSync(fma && fs.existsSync(file(true)) ? file(true) : file(false));
}
