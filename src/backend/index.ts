/**
 * Backend selection. Order of preference at start-up:
 *
 *   @tensorflow/tfjs-node-gpu ('tensorflow', CUDA) -> @tensorflow/tfjs-backend-webgpu ('webgpu', Dawn;
 *   hardware adapters only, see ./webgpu) -> @tensorflow/tfjs-node ('tensorflow', native CPU)
 *   -> WebAssembly ('wasm', embedded default: its .wasm ships inside the npm package) -> 'cpu' (pure JS)
 *
 * tfjs-node(-gpu) are optional peers: their install downloads libtensorflow, so they are probed with
 * require() and skipped when absent or broken. `CONVNEXT_BACKEND` (or the `backend` option) forces
 * one: auto | node-gpu | webgpu | node | tensorflow | wasm | cpu. A forced backend that cannot load is an
 * error, never a silent fallback.
 */
import * as tf from '@tensorflow/tfjs-core';
// What the @tensorflow/tfjs umbrella used to register for us (we no longer depend on it, issue 14):
// the cpu backend, and every op's gradient plus the chained tensor methods, which tfjs-core's
// CommonJS build alone lacks (./core_registrations).
import '@tensorflow/tfjs-backend-cpu';
import { registerCoreGradients } from './core_registrations';
import * as os from 'os';
import { BackendError } from '../errors';
import { settings } from '../env';
import { registerSimdKernels, unregisterSimdKernels } from './wasm_simd';
import { startKernelThreads } from './wasm_simd/pool';
import { fusedKernels } from './wasm_simd/kernels';
import { allowRelaxedSimd } from './relaxed_simd';
import { registerWasmTrainingKernels } from './wasm_gradients';
import { AdapterReport, DAWN_PACKAGE, dawnOptions, gpuDeviceNodes, importEsm, installWebGpu, webGpuAdapter } from './webgpu';
import { MAX_WASM_THREADS, useThreadedWasm, wasmThreads, wasmThreadsSupported } from './wasm_threads';

registerCoreGradients();

export type BackendRequest = 'auto' | 'node-gpu' | 'webgpu' | 'node' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** tf.getBackend() after initialisation: 'tensorflow' | 'webgpu' | 'wasm' | 'cpu'. */
  backend: string;
  /** The npm package that provides it. */
  package: string;
  /** Candidates that were tried and failed, with the reason (auto mode). */
  skipped: { package: string; reason: string }[];
  /** wasm only: threads of its XNNPACK pool (1 = the package's single-threaded build). */
  threads?: number;
  /** wasm only: whether our SIMD kernels (src/backend/wasm_simd) serve first. */
  simd?: boolean;
  /** wasm with our kernels only: whether they are the fused multiply-add variants (relaxed SIMD, wasm_simd/fma.ts). */
  fma?: boolean;
  /** webgpu only: the adapter Dawn gave (software ones only when 'webgpu' was asked for by name). */
  adapter?: AdapterReport;
}

interface Candidate {
  request: Exclude<BackendRequest, 'auto' | 'tensorflow'>;
  backend: string;
  package: string;
}

const CANDIDATES: Candidate[] = [
  { request: 'node-gpu', backend: 'tensorflow', package: '@tensorflow/tfjs-node-gpu' },
  { request: 'webgpu', backend: 'webgpu', package: '@tensorflow/tfjs-backend-webgpu' },
  { request: 'node', backend: 'tensorflow', package: '@tensorflow/tfjs-node' },
  { request: 'wasm', backend: 'wasm', package: '@tensorflow/tfjs-backend-wasm' },
  { request: 'cpu', backend: 'cpu', package: '@tensorflow/tfjs-backend-cpu' },
];

/**
 * Loads a package for its side effect (registering a backend) or its exports (Dawn's `webgpu`);
 * may return a promise. Injectable for tests.
 */
export type ModuleLoader = (pkg: string) => unknown;

// `webgpu` is ESM only; the rest are CommonJS.
const defaultLoader: ModuleLoader = (pkg) => (pkg === DAWN_PACKAGE ? importEsm(pkg) : require(pkg));

export interface InitBackendOptions {
  /** Which backend; default: $CONVNEXT_BACKEND, else 'auto'. */
  backend?: BackendRequest | string;
  /**
   * wasm only: threads for its ops, default $CONVNEXT_THREADS, else 1; 'auto': every core
   * (os.availableParallelism(), at most 8). 1 runs the package's single-threaded build with our SIMD
   * kernels for everything (matrix products included: no packed weight copies, the leanest
   * memory); more runs its threaded build: our SIMD kernels (depthwise, GELU, LayerNorm, the matrix
   * products) split each call over as many kernel threads (src/backend/wasm_simd/pool.ts), XNNPACK
   * the stem and downsampling convs (ConvNeXt-T: +~80 MB, a V8 isolate per thread and the threaded heap;
   * without kernel threads XNNPACK takes the products too, +~110 MB of packed weights). For many images an InferencePool of
   * single-threaded replicas is the faster use of the cores. Fixed when the wasm backend first
   * initialises in a process (its heap holds the tensors).
   */
  threads?: number | 'auto';
  /**
   * wasm only: put our SIMD kernels (src/backend/wasm_simd: depthwise, GEMM, GELU, LayerNorm) in front of
   * the package's. Default true; $CONVNEXT_SIMD=0 turns them off (for A/B comparisons).
   */
  simd?: boolean;
  /**
   * webgpu only: options for Dawn's create(), e.g. ['adapter=NVIDIA GeForce RTX 4090'],
   * ['backend=vulkan']; $CONVNEXT_WEBGPU_ADAPTER adds `adapter=<it>` when none is given.
   */
  dawnOptions?: string[];
  /** For tests: replaces require(). */
  loader?: ModuleLoader;
}

/** The wasm thread count asked for: option, else $CONVNEXT_THREADS, else 1; 'auto' is every core (at most 8). */
export function requestedWasmThreads(threads?: number | 'auto'): number {
  const asked: number | string = threads ?? settings.threads() ?? 1;
  const raw = asked === 'auto' ? Math.min(os.availableParallelism(), MAX_WASM_THREADS) : Number(asked);
  if (!Number.isInteger(raw) || raw < 1 || raw > MAX_WASM_THREADS) {
    const from = threads !== undefined ? 'threads' : '$CONVNEXT_THREADS';
    throw new BackendError(`${from} must be 'auto' or an integer from 1 to ${MAX_WASM_THREADS}, got '${asked}'`);
  }
  return raw;
}

/** Whether our SIMD kernels serve on wasm: option, else not $CONVNEXT_SIMD=0. */
export function simdRequested(simd?: boolean): boolean {
  return simd ?? settings.simd();
}

const REQUESTS: readonly string[] = ['auto', 'node-gpu', 'webgpu', 'node', 'tensorflow', 'wasm', 'cpu'];

function reasonOf(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0];
}

async function setBackend(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`backend '${name}' failed to initialise`);
  await tf.ready();
}

async function tryCandidate(
  c: Candidate,
  loader: ModuleLoader,
  threads: number,
  simd: boolean,
  skipped: BackendInfo['skipped'],
  webgpu: { options: string[]; allowSoftware: boolean } = { options: dawnOptions(), allowSoftware: false },
): Promise<void> {
  // navigator.gpu must exist before tfjs-backend-webgpu is loaded: it registers only if it does.
  // The device-node look-up is part of the real environment; an injected loader simulates it.
  if (c.backend === 'webgpu') await installWebGpu(loader, webgpu.options, webgpu.allowSoftware, loader === defaultLoader ? gpuDeviceNodes : undefined);
  await loader(c.package);
  if (!tf.findBackendFactory(c.backend)) throw new Error(`${c.package} loaded but registered no '${c.backend}' backend`);
  // The library is silent: PROD mutes tfjs-core's console advice (e.g. "install tfjs-node").
  tf.env().set('PROD', true);
  if (c.backend === 'wasm' && threads > 1 && wasmThreadsSupported()) {
    const restore = useThreadedWasm(threads);
    try {
      await setBackend(c.backend);
    } catch (e) {
      // Threads are a speed-up, not a requirement: fall back to the package's own build.
      skipped.push({ package: `${c.package} (${threads} threads)`, reason: reasonOf(e) });
      restore();
      await setBackend(c.backend);
    }
  } else {
    await setBackend(c.backend);
  }
  // NOTE: tfjs-backend-wasm has no conv backprop-filter / depthwise backprop kernels (tfjs #8474):
  // ours make ConvNeXt trainable on the embedded default.
  if (c.backend === 'wasm') {
    registerWasmTrainingKernels();
    if (simd) registerSimdKernels();
    else unregisterSimdKernels();
    // Our kernels on every thread XNNPACK has (a pool that cannot start leaves them on this one).
    if (simd && wasmThreads() > 1) await startKernelThreads(tf.backend(), wasmThreads());
  }
}

/**
 * Picks and initialises the TF.js backend. Idempotent for the same request.
 *
 *   const { backend } = await initBackend();            // auto
 *   await initBackend({ backend: 'cpu' });               // forced
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  const request = (opts.backend ?? settings.backend() ?? 'auto').trim().toLowerCase() || 'auto';
  if (!REQUESTS.includes(request)) {
    throw new BackendError(`unknown backend '${request}': use one of ${REQUESTS.join(', ')}`);
  }
  const loader = opts.loader ?? defaultLoader;
  const threads = requestedWasmThreads(opts.threads);
  const simd = simdRequested(opts.simd);
  // Before any kernel compiles: a thread's kernel variant is fixed by its first kernels.
  if (simd) allowRelaxedSimd();
  const skipped: BackendInfo['skipped'] = [];
  const wanted =
    request === 'auto'
      ? CANDIDATES
      : request === 'tensorflow'
        ? CANDIDATES.filter((c) => c.backend === 'tensorflow')
        : CANDIDATES.filter((c) => c.request === request);
  // A software adapter (SwiftShader, llvmpipe) only when webgpu is asked for by name.
  const webgpu = { options: dawnOptions(opts.dawnOptions), allowSoftware: request === 'webgpu' };
  for (const c of wanted) {
    try {
      await tryCandidate(c, loader, threads, simd, skipped, webgpu);
      const backend = tf.getBackend();
      if (backend === 'webgpu') return { backend, package: c.package, skipped, adapter: webGpuAdapter()! };
      if (backend !== 'wasm') return { backend, package: c.package, skipped };
      return { backend, package: c.package, skipped, threads: wasmThreads(), simd, ...(simd ? { fma: fusedKernels(tf.backend()) } : {}) };
    } catch (e) {
      skipped.push({ package: c.package, reason: reasonOf(e) });
    }
  }
  const detail = skipped.map((s) => `${s.package}: ${s.reason}`).join('; ');
  const hint =
    request === 'node' || request === 'node-gpu' || request === 'tensorflow'
      ? ' (install it with `npm install @tensorflow/tfjs-node` or `@tensorflow/tfjs-node-gpu`; its install step downloads libtensorflow)'
      : request === 'webgpu'
        ? ' (install it with `npm install webgpu @tensorflow/tfjs-backend-webgpu@4.22.0`; it needs a Vulkan, Metal or D3D12 driver)'
        : '';
  throw new BackendError(`could not initialise backend '${request}': ${detail}${hint}`);
}

/**
 * Names of backends currently usable without installing anything (probes each; restores the
 * current one). webgpu counts with a hardware adapter only, as in auto-selection.
 */
export async function availableBackends(loader: ModuleLoader = defaultLoader): Promise<string[]> {
  const current = tf.getBackend();
  const found: string[] = [];
  for (const c of CANDIDATES) {
    try {
      await tryCandidate(c, loader, requestedWasmThreads(), simdRequested(), []);
      if (!found.includes(c.request)) found.push(c.request);
    } catch {
      // not installed or not working here
    }
  }
  if (current) await tf.setBackend(current);
  return found;
}
