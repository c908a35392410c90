/**
 * The multi-threaded WebAssembly backend in Node.
 *
 * tfjs-backend-wasm ships a pthreads build (XNNPACK on a pthreadpool: matMul, conv, depthwise and
 * friends split across threads), but in Node its loader never reaches it: threads are feature-tested
 * for browsers only, the pthread workers are started from Blob URLs (worker_threads cannot run those),
 * and the pool is capped at os.cpus().length / 2 (it assumes hyperthreads), one thread on 2 cores.
 * Here the same build is loaded from the package's wasm-out/ folder instead:
 *   - the emscripten factory (wasm-out/tfjs-backend-wasm-threaded-simd.js) with its .wasm beside it;
 *   - pthread workers from a real file, wasm_pthread_worker.js;
 *   - the core count it reads answered with 2 x the requested threads, so the pool gets exactly them;
 * and the package's own BackendWasm class wraps the module, so every wasm kernel it registers (and
 * ours, src/backend/wasm_gradients) runs unchanged. The backend keeps the name 'wasm'.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { BackendWasm, setThreadsCount, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { WasmInstance, WasmModule, webAssembly } from './webassembly';

/** The most threads the build can use: it pre-spawns 8 pthread workers and caps its pool there. */
export const MAX_WASM_THREADS = 8;

const BUILD = 'tfjs-backend-wasm-threaded-simd';

/** The slice of the emscripten module this file touches (the rest is BackendWasm's business). */
interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  PThread?: { runningWorkers: { unref(): void }[]; unusedWorkers: { terminate(): unknown }[] };
  tfjs?: Record<string, (...a: number[]) => number>;
}

interface ModuleConfig {
  locateFile(file: string): string;
  instantiateWasm(imports: { env: Record<string, unknown> }, receive: (instance: WasmInstance, module: WasmModule) => void): Record<string, never>;
}

type Factory = (config: ModuleConfig) => Promise<EmscriptenModule>;

function buildDir(): string {
  return path.dirname(require.resolve(`@tensorflow/tfjs-backend-wasm/wasm-out/${BUILD}.js`));
}

/** WebAssembly threads need shared memory and atomics (Node >= 16 has both). */
export function wasmThreadsSupported(): boolean {
  try {
    if (!webAssembly) return false;
    new webAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return typeof Atomics === 'object' && typeof SharedArrayBuffer === 'function';
  } catch {
    return false;
  }
}

/**
 * Instantiates the threaded build with `threads` threads (the calling thread plus threads - 1 pthreads)
 * and returns tfjs's BackendWasm over it. Rejects if the build cannot start.
 */
export async function createThreadedWasmBackend(threads: number): Promise<tf.KernelBackend> {
  const api = webAssembly;
  if (!api || !wasmThreadsSupported()) throw new Error('this Node has no WebAssembly threads (shared memory)');
  const n = Math.max(1, Math.min(MAX_WASM_THREADS, Math.floor(threads)));
  const dir = buildDir();
  const worker = path.join(__dirname, 'wasm_pthread_worker.js');
  const factory = require(path.join(dir, `${BUILD}.js`)) as Factory;
  // emscripten never settles its promise when a custom instantiateWasm fails: race it with ours.
  let fail: (e: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => (fail = reject));
  const module = await Promise.race([
    factory({
      locateFile: (file) => (file.endsWith('.worker.js') ? worker : path.join(dir, file)),
      instantiateWasm(imports, receive) {
        // backend.cc sizes its pool as min(requested, logical cores / 2): answer so that it is `n`.
        imports.env.emscripten_num_logical_cores = () => 2 * n;
        api.instantiate(fs.readFileSync(path.join(dir, `${BUILD}.wasm`)), imports).then((r) => receive(r.instance, r.module), fail);
        return {};
      },
    }),
    failed,
  ]);
  // The same bridge the package's own loader sets up.
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  setThreadsCount(n);
  const backend = new BackendWasm(module as unknown as ConstructorParameters<typeof BackendWasm>[0]);
  // Pool threads wait for work forever; they must not keep the process alive once the program is done.
  for (const w of module.PThread?.runningWorkers ?? []) w.unref();
  // emscripten pre-spawns 8 workers (a V8 isolate each, ~8 MB); the pool took n - 1 of them. The rest
  // go: emscripten spawns a new one should anything ever create another thread.
  const spare = module.PThread?.unusedWorkers.splice(0) ?? [];
  await Promise.all(spare.map((w) => w.terminate()));
  return backend;
}

/** Threads of the initialised wasm backend (1 for the package's single-threaded build). */
export function wasmThreads(): number {
  return getThreadsCount();
}

/**
 * Makes the 'wasm' backend the threaded build with `threads` threads, from the next
 * tf.setBackend('wasm') on. Returns a function that puts the package's own loader back.
 * No effect (and a no-op restore) once a 'wasm' backend is initialised: its heap holds tensors.
 */
export function useThreadedWasm(threads: number): () => void {
  const original = tf.findBackendFactory('wasm');
  if (!original || tf.engine().registry.wasm) return () => {};
  const priority = 2; // tfjs-backend-wasm's WASM_PRIORITY
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', () => createThreadedWasmBackend(threads), priority);
  return () => {
    if (tf.engine().registry.wasm) return;
    tf.removeBackend('wasm');
    tf.registerBackend('wasm', original, priority);
  };
}
