/**
 * The assembled SIMD kernel binaries (scripts/build-wasm.js: dist/src/backend/wasm_simd/<name>[.shared].wasm),
 * read from beside this file in Node. The browser build swaps in binaries.browser.ts, which embeds them.
 */
import * as fs from 'fs';
import * as path from 'path';

/** Bytes of kernel module `name`; `shared`: the variant importing a shared memory (threaded build). */
export function simdBinary(name: string, shared: boolean): Uint8Array {
  return fs.readFileSync(path.join(__dirname, `${name}${shared ? '.shared' : ''}.wasm`));
}
