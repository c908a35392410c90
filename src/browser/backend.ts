/**
 * Backend selection in a browser. Order of preference:
 *
 *   'webgpu' (@tensorflow/tfjs-backend-webgpu; needs navigator.gpu and an adapter)
 *   -> 'webgl' (@tensorflow/tfjs-backend-webgl; WebGL 2, float32 textures where the GPU has them)
 *   -> 'wasm'  (@tensorflow/tfjs-backend-wasm, with our SIMD kernels in front of its own, as in Node;
 *               its threaded build, and the .shared variants of our kernels, when the page is
 *               cross-origin isolated)
 *   -> 'cpu'   (pure JS)
 *
 * `backend` forces one; a forced backend that cannot start is a BackendError, never a silent
 * fallback. The Node selection (tfjs-node > wasm > cpu) is src/backend/index.ts; this file is the
 * browser entry's and imports nothing of Node.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// 'webgl' is registered by the bundle's entry (bundle.ts; no import here: see there).
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { BackendInfo } from '../backend';
import { registerSimdKernels, unregisterSimdKernels } from '../backend/wasm_simd';
import { fusedKernels } from '../backend/wasm_simd/kernels';
import { registerWasmTrainingKernels } from '../backend/wasm_gradients';
import { BackendError } from '../errors';

export type { BackendInfo };

export type BrowserBackend = 'webgpu' | 'webgl' | 'wasm' | 'cpu';
export type BrowserBackendRequest = 'auto' | BrowserBackend;

export const BROWSER_BACKENDS: readonly BrowserBackend[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

export interface BrowserBackendOptions {
  /** Which backend (default 'auto': the first of webgpu, webgl, wasm, cpu that starts). */
  backend?: BrowserBackendRequest | string;
  /**
   * URL of the folder holding tfjs-backend-wasm's binaries (tfjs-backend-wasm.wasm, -simd.wasm,
   * -threaded-simd.wasm); default: the folder of this bundle (build:browser copies them there).
   */
  wasmPaths?: string;
  /**
   * wasm: threads for XNNPACK. Default 'auto': every core when the page is cross-origin isolated
   * (the threaded build needs SharedArrayBuffer), else 1 (the single-threaded SIMD build).
   * NOTE: tfjs-backend-wasm then caps its pool at navigator.hardwareConcurrency / 2; BackendInfo's
   * `threads` is the count it really runs.
   */
  threads?: number | 'auto';
  /** wasm: our SIMD kernels in front of the package's (default true). */
  simd?: boolean;
}

/** The folder of the running bundle (an ES module), for the wasm binaries beside it. */
function bundleFolder(): string {
  return new URL('./', import.meta.url).href;
}

function reasonOf(e: unknown): string {
  const msg = e instanceof Error ? e.message : typeof e === 'object' && e && 'message' in e ? String((e as { message: unknown }).message) : String(e);
  return msg.split('\n')[0];
}

let wasmConfigured = false;

function crossOriginIsolated(): boolean {
  return (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
}

/** The wasm thread count for `threads` on this page (1 without cross-origin isolation). */
export function browserWasmThreads(threads: number | 'auto' = 'auto'): number {
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  if (threads !== 'auto' && !(Number.isInteger(threads) && threads >= 1)) {
    throw new BackendError(`threads must be 'auto' or a positive integer, got ${String(threads)}`);
  }
  if (!crossOriginIsolated()) return 1;
  return threads === 'auto' ? Math.max(1, Math.min(cores, 8)) : threads;
}

async function start(name: BrowserBackend, opts: BrowserBackendOptions): Promise<void> {
  if (name === 'webgpu') {
    const gpu = (globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<unknown> } } }).navigator?.gpu;
    if (!gpu) throw new Error('this browser has no navigator.gpu');
    if (!(await gpu.requestAdapter())) throw new Error('navigator.gpu offers no adapter');
    // Loaded on demand: a page that never reaches WebGPU does not pay for its bundle.
    await import('@tensorflow/tfjs-backend-webgpu');
  }
  if (name === 'wasm' && !wasmConfigured) {
    const threads = browserWasmThreads(opts.threads);
    setWasmPaths(opts.wasmPaths ?? bundleFolder());
    // NOTE: tfjs-backend-wasm picks its threaded build whenever SharedArrayBuffer exists; one
    // thread means its single-threaded SIMD build (and our plain-memory kernels).
    if (threads === 1) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    else setThreadsCount(threads);
    wasmConfigured = true;
  }
  if (!tf.findBackendFactory(name)) throw new Error(`no '${name}' backend is registered`);
  if (!(await tf.setBackend(name))) throw new Error(`backend '${name}' failed to initialise`);
  await tf.ready();
}

/**
 * Picks and initialises the TF.js backend in a page. Idempotent for the same request.
 *
 *   const { backend } = await initBackend();                  // webgpu > webgl > wasm > cpu
 *   await initBackend({ backend: 'wasm' });                    // forced
 */
export async function initBackend(opts: BrowserBackendOptions = {}): Promise<BackendInfo> {
  const request = (opts.backend ?? 'auto').trim().toLowerCase() || 'auto';
  if (request !== 'auto' && !BROWSER_BACKENDS.includes(request as BrowserBackend)) {
    throw new BackendError(`unknown backend '${request}': use one of auto, ${BROWSER_BACKENDS.join(', ')}`);
  }
  // The library is silent: PROD mutes tfjs-core's console advice.
  tf.env().set('PROD', true);
  const simd = opts.simd ?? true;
  const wanted = request === 'auto' ? BROWSER_BACKENDS : [request as BrowserBackend];
  const skipped: BackendInfo['skipped'] = [];
  for (const name of wanted) {
    try {
      await start(name, opts);
    } catch (e) {
      skipped.push({ package: `@tensorflow/tfjs-backend-${name}`, reason: reasonOf(e) });
      continue;
    }
    const info: BackendInfo = { backend: tf.getBackend(), package: `@tensorflow/tfjs-backend-${name}`, skipped };
    if (name === 'wasm') {
      // NOTE: tfjs-backend-wasm has no conv backprop kernels (tfjs #8474): ours, as in Node.
      registerWasmTrainingKernels();
      if (simd) registerSimdKernels();
      else unregisterSimdKernels();
      return { ...info, threads: getThreadsCount(), simd, ...(simd ? { fma: fusedKernels(tf.backend()) } : {}) };
    }
    return info;
  }
  throw new BackendError(`could not initialise backend '${request}': ${skipped.map((s) => `${s.package}: ${s.reason}`).join('; ')}`);
}
