/**
 * Our WebAssembly SIMD kernels (src/backend/wasm_simd/*.wat, assembled by scripts/build-wasm.js), run
 * directly on the TF.js wasm backend's heap: each kernel module imports the backend's own memory,
 * so inputs and outputs are read and written in place, with no copies. On the threaded build, once a
 * kernel thread pool is attached (pool.ts), the splittable kernels share each call among its threads
 * (split.ts); everything else, and every call on the other builds, runs on the calling thread.
 */
import * as tf from '@tensorflow/tfjs-core';
import { webAssembly } from '../webassembly';
import { simdBinary } from './binaries';
import { fmaKernels } from './fma';
import { KernelThreads, threadedKernels } from './split';

/** The part of tfjs-backend-wasm's BackendWasm the SIMD kernels use. */
export interface HeapBackend {
  wasm: { wasmMemory?: object; asm?: { memory?: object }; _malloc(bytes: number): number };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object): boolean;
  typedArrayFromHeap(t: tf.TensorInfo): tf.backend_util.TypedArray;
}

/** Exports of the .wat modules (pointers are byte offsets into the heap). */
export interface SimdExports {
  /** depthwise_nhwc.wat */
  depthwise_nhwc(x: number, w: number, bias: number, y: number, n: number, h: number, w_: number, c: number, k: number): void;
  /** depthwise_nhwc.wat: units u0 .. u1 - 1, each one of the N * H output rows by a block of cbw channels (cbw = c: rows). */
  depthwise_nhwc_part(x: number, w: number, bias: number, y: number, h: number, w_: number, c: number, k: number, u0: number, u1: number, cbw: number): void;
  /** gelu.wat */
  gelu_f32(x: number, y: number, n: number): void;
  /** scaled_residual.wat: out = x + gamma * y over [rows, C] (gamma 0: x + y). */
  scaled_residual_f32(x: number, y: number, gamma: number, out: number, rows: number, c: number): void;
  /** layer_norm.wat */
  layer_norm_f32(x: number, w: number, b: number, y: number, rows: number, c: number, eps: number): void;
  /** gemm.wat: C = A B; gemm_tn_f32: C = A^T B (A stored [K, M]); gemm_nt_f32: C = A B^T (B stored [N, K]). bias -1: C +=. */
  gemm_f32(a: number, b: number, bias: number, c: number, m: number, k: number, n: number, scratch: number, kc: number, ascratch: number, mc: number): void;
  gemm_tn_f32(a: number, b: number, bias: number, c: number, m: number, k: number, n: number, scratch: number, kc: number, ascratch: number, mc: number): void;
  gemm_nt_f32(a: number, b: number, bias: number, c: number, m: number, k: number, n: number, scratch: number, kc: number, ascratch: number, mc: number): void;
  /** gemm.wat: a block of rows or columns of one of the three (lda, ldc: row strides of A and C in floats). */
  gemm_part_f32(
    a: number,
    b: number,
    bias: number,
    c: number,
    m: number,
    k: number,
    n: number,
    scratch: number,
    kc: number,
    ascratch: number,
    mc: number,
    transa: number,
    transb: number,
    lda: number,
    ldc: number,
  ): void;
  /** colsum.wat */
  colsum_f32(x: number, y: number, rows: number, c: number, acc: number): void;
  /** gelu_grad.wat */
  gelu_grad_f32(x: number, dy: number, dx: number, n: number): void;
  /** layer_norm_grad.wat */
  layer_norm_grad_f32(x: number, w: number, dy: number, dx: number, dw: number, db: number, rows: number, c: number, eps: number): void;
  /** depthwise_filter_grad.wat */
  depthwise_filter_grad7_nhwc(x: number, dy: number, dw: number, n: number, h: number, w: number, c: number): void;
  /** adamw.wat */
  adamw_f32(
    p: number,
    m: number,
    v: number,
    g: number,
    p2: number,
    m2: number,
    v2: number,
    n: number,
    b1: number,
    omb1: number,
    b2: number,
    omb2: number,
    keep: number,
    bc2: number,
    eps: number,
    step: number,
    decay: number,
  ): void;
  /** patches.wat */
  patches_f32(x: number, p: number, n: number, oh: number, ow: number, s: number, c: number, h: number, w: number): void;
  unpatches_f32(p: number, x: number, n: number, oh: number, ow: number, s: number, c: number, h: number, w: number): void;
}

/** The assembled modules (dist/src/backend/wasm_simd/<name>[.shared].wasm). */
const MODULES = [
  'adamw',
  'colsum',
  'depthwise_filter_grad',
  'depthwise_nhwc',
  'gelu',
  'gelu_grad',
  'gemm',
  'layer_norm',
  'layer_norm_grad',
  'patches',
  'scaled_residual',
];

const instances = new WeakMap<object, SimdExports | null>();
/** Per backend with a kernel thread pool: the pool and the exports that share calls among its threads. */
const threaded = new WeakMap<object, { pool: KernelThreads; kernels: SimdExports }>();

export function isHeapBackend(b: unknown): b is HeapBackend {
  const c = b as Partial<HeapBackend> | null;
  return (
    !!c && typeof c.makeOutput === 'function' && typeof c.dataIdMap?.get === 'function' && typeof c.wasm === 'object' && typeof c.wasm._malloc === 'function'
  );
}

/**
 * The SIMD kernels bound to `backend`'s heap (instantiated once per backend; sharing calls among
 * the threads of an attached kernel thread pool), or null when `backend` is not a wasm backend whose
 * memory can be reached.
 */
export function simdKernelsFor(backend: unknown): SimdExports | null {
  if (!isHeapBackend(backend)) return null;
  const pooled = threaded.get(backend);
  if (pooled) return pooled.kernels;
  const cached = instances.get(backend);
  if (cached !== undefined) return cached;
  // Threaded build: the memory is created in JS (Module.wasmMemory); the others export it.
  const memory = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  let kernels: SimdExports | null = null;
  if (webAssembly && memory && typeof (memory as { buffer?: unknown }).buffer === 'object') {
    // A page that is not cross-origin isolated has no SharedArrayBuffer global at all.
    const shared = typeof SharedArrayBuffer !== 'undefined' && (memory as { buffer: unknown }).buffer instanceof SharedArrayBuffer;
    const exports = {};
    for (const name of MODULES) {
      const module = new webAssembly.Module(simdBinary(name, shared, fmaKernels()));
      Object.assign(exports, new webAssembly.Instance(module, { env: { memory } }).exports);
    }
    kernels = exports as SimdExports;
  }
  instances.set(backend, kernels);
  return kernels;
}

/**
 * Whether `backend`'s SIMD kernels are the fused multiply-add variants (instantiating them if not
 * yet): the thread's choice, which its first kernels fixed (fma.ts).
 */
export function fusedKernels(backend: unknown): boolean {
  return !!simdKernelsFor(backend) && fmaKernels();
}

/** The backend's heap memory when it is a shared WebAssembly.Memory (the threaded build), else null. */
export function sharedHeapOf(backend: unknown): object | null {
  if (!isHeapBackend(backend) || typeof SharedArrayBuffer === 'undefined') return null;
  const memory = backend.wasm.wasmMemory;
  return memory && (memory as { buffer?: unknown }).buffer instanceof SharedArrayBuffer ? memory : null;
}

/**
 * Lets `backend`'s SIMD kernels share calls among `pool`'s threads (pool.ts), or, with null, run
 * every call on the calling thread again. Needs the kernels bound to a shared heap.
 */
export function attachKernelThreads(backend: unknown, pool: KernelThreads | null): void {
  if (!isHeapBackend(backend)) return;
  threaded.delete(backend);
  const raw = pool && sharedHeapOf(backend) ? simdKernelsFor(backend) : null;
  if (pool && raw) threaded.set(backend, { pool, kernels: threadedKernels(raw, pool) });
}

/** The kernel thread pool attached to `backend`, or null. */
export function kernelThreadsOf(backend: unknown): KernelThreads | null {
  return (isHeapBackend(backend) && threaded.get(backend)?.pool) || null;
}

/** The arguments of a kernel function, as our fast paths take them. */
export type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** The call's inputs `names` if every one is present and float32, else null (the call is not ours). */
export function float32Inputs<K extends string>(args: KernelArgs, names: readonly K[]): Record<K, tf.TensorInfo> | null {
  const found = {} as Record<K, tf.TensorInfo>;
  for (const name of names) {
    const t = args.inputs[name];
    if (!t || t.dtype !== 'float32') return null;
    found[name] = t;
  }
  return found;
}

/** Byte offset of a tensor's data on the heap. */
export function heapOffset(backend: HeapBackend, t: tf.TensorInfo): number {
  const entry = backend.dataIdMap.get(t.dataId);
  if (!entry) throw new Error('tensor has no data on the wasm heap');
  return entry.memoryOffset;
}
