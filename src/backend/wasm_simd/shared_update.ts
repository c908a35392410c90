/**
 * Our SIMD update kernels (adamw.wat, update.wat) bound to a shared WebAssembly.Memory the caller
 * owns rather than to a backend's heap: the data-parallel engine keeps a run's weights, gradients,
 * moments and EMA in one (src/train/data_parallel/update.ts), and each worker thread updates its
 * slice of it in place. Offsets are bytes into that memory.
 */
import { settings } from '../../env';
import { webAssembly } from '../webassembly';
import { AdamWKernelAttrs, adamwConstants } from './adamw';
import { simdBinary } from './binaries';
import { SimdExports } from './kernels';

export interface UpdateKernels {
  /** AdamW in place on n floats (adamw.wat: the ADAMW kernel's bits). */
  adamw(p: number, m: number, v: number, g: number, n: number, a: AdamWKernelAttrs): void;
  /** y = a x (init), else y += a x. */
  axpy(y: number, x: number, n: number, a: number, init: boolean): void;
  /** s = s d + p (1 - d). */
  ema(s: number, p: number, n: number, decay: number): void;
}

interface UpdateExports {
  adamw_f32: SimdExports['adamw_f32'];
  axpy_f32(y: number, x: number, n: number, a: number, init: number): void;
  ema_f32(s: number, p: number, n: number, d: number, omd: number): void;
}

/** A shared memory holds 65536 pages of 64 KiB at most (the kernels import it as wasm32 memory). */
const PAGE = 65536;
const MAX_PAGES = 65536;

/**
 * A new shared WebAssembly.Memory of at least `bytes`, or null where none can serve: our kernels
 * off (CONVNEXT_SIMD=0), no WebAssembly or SharedArrayBuffer, or more than 4 GiB.
 */
export function sharedKernelMemory(bytes: number): { memory: object; buffer: SharedArrayBuffer } | null {
  const pages = Math.max(1, Math.ceil(bytes / PAGE));
  if (!settings.simd() || !webAssembly || typeof SharedArrayBuffer === 'undefined' || pages > MAX_PAGES) return null;
  try {
    const memory = new webAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    return { memory, buffer: (memory as { buffer: SharedArrayBuffer }).buffer };
  } catch {
    return null; // e.g. the address space refuses the reservation: the caller uses plain SharedArrayBuffers
  }
}

/** The update kernels on `memory` (from sharedKernelMemory), or null where WebAssembly SIMD is missing. */
export function updateKernels(memory: object): UpdateKernels | null {
  if (!webAssembly) return null;
  let e: UpdateExports;
  try {
    const exports = {};
    for (const name of ['adamw', 'update'])
      Object.assign(exports, new webAssembly.Instance(new webAssembly.Module(simdBinary(name, true)), { env: { memory } }).exports);
    e = exports as UpdateExports;
  } catch {
    return null;
  }
  return {
    adamw: (p, m, v, g, n, a) => e.adamw_f32(p, m, v, g, p, m, v, n, ...adamwConstants(a)),
    axpy: (y, x, n, a, init) => e.axpy_f32(y, x, n, a, init ? 1 : 0),
    ema: (s, p, n, decay) => e.ema_f32(s, p, n, decay, 1 - decay),
  };
}
