/**
 * Entry file of one pthread of the threaded wasm backend (see wasm_threads.ts), run by worker_threads.
 *
 * tfjs-backend-wasm ships its emscripten pthread bootstrap only as a string (wasmWorkerContents), meant
 * for a Blob URL, which Node cannot start a worker from. This file runs that same string with this
 * module's `require` and `__filename`, which its Node branch expects. The string escapes newlines the
 * way the package's own loader does before making its Blob.
 */
const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as {
  wasmWorkerContents: string;
};
new Function('require', '__filename', wasmWorkerContents.replace(/\n/g, '\\n'))(require, __filename);
