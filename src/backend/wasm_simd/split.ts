/**
 * How our SIMD kernels share one call among the kernel threads (pool.ts) on the threaded wasm
 * backend: the call's work is cut into contiguous chunks, large first and small last (guidedRange),
 * which the calling thread and the pool's workers claim one at a time, all on the same heap. Each
 * chunk writes its own slice of the output and reads the inputs in place, so a threaded call gives
 * the single-thread call's bits:
 *
 *   depthwise_nhwc   units of one output row (of the N * H) by a block of channels: whole rows when
 *                    there are many, channel blocks too when there are few (each reads its k - 1 rows
 *                    of halo of x, read-only)
 *   gelu_f32, gelu_grad_f32   elements (multiples of 16 floats: whole cache lines per thread)
 *   layer_norm_f32, scaled_residual_f32   rows
 *   gemm_*_f32       blocks of C's rows or of its columns (multiples of 8), whichever costs less
 *                    copying (COPY_B, PACK_A), each thread with its own scratch panel and packed A
 *
 * A call with less work than MIN_PART_MACS (depthwise), two chunks of it (GEMM) or SPLIT_ELEMENTS
 * (the others) runs on the calling thread alone: a hand-off costs a wake-up (tens of microseconds,
 * more on a busy machine).
 */
import type { SimdExports } from './kernels';

/** The calling side of a kernel thread pool (pool.ts). */
export interface KernelThreads {
  /** Threads including the caller. */
  readonly size: number;
  /** False once a worker failed: every call then runs on the calling thread. */
  readonly live: boolean;
  /**
   * Runs every chunk (arguments of POOLED_EXPORTS[op]; the caller's GEMM scratch at GEMM_SCRATCH_ARGS,
   * which a worker replaces by its own) on whichever thread claims it first, the calling thread
   * included (`own` runs a chunk here); returns once all are done, throws if one failed.
   */
  run(op: number, chunks: readonly (readonly number[])[], own: (args: readonly number[]) => void): void;
}

/** Where gemm_part_f32 takes its scratch panel and packed-A scratch: per thread, never shared. */
export const GEMM_SCRATCH_ARGS = [7, 9] as const;

/** The most chunks of one call (pool_protocol's argument slots). */
export const MAX_CHUNKS = 64;

/** The modules a worker instantiates, and the exports it runs (by index: the op of run()). */
export const POOLED_MODULES = ['depthwise_nhwc', 'gelu', 'gelu_grad', 'layer_norm', 'gemm', 'scaled_residual'] as const;
export const POOLED_EXPORTS = ['depthwise_nhwc_part', 'gelu_f32', 'gelu_grad_f32', 'layer_norm_f32', 'gemm_part_f32', 'scaled_residual_f32'] as const;
type Pooled = (typeof POOLED_EXPORTS)[number];
const op = (name: Pooled): number => POOLED_EXPORTS.indexOf(name);

/** Least multiply-adds per chunk (depthwise, GEMM): ~0.1 ms of one thread's work. */
export const MIN_PART_MACS = 1 << 20;
/**
 * Depthwise: a call's units per thread below which its rows are cut into channel blocks too (ConvNeXt-T
 * at batch 1: stage 2's 28 rows in 2 blocks, stage 3's 14 in 3, stage 4's 7 in 5), and the least
 * channels in a block (four vectors: whole cache lines). A depthwise chunk copies nothing, so its
 * chunks may be smaller than MIN_PART_MACS (a claim costs an atomic add); a call of MIN_PART_MACS
 * or more is split (stage 4 at batch 1, 1.8M multiply-adds, 0.2 ms: 0.70x on 2 threads).
 */
const DEPTHWISE_UNITS_PER_THREAD = 16;
const DEPTHWISE_MIN_BLOCK = 16;
const DEPTHWISE_MIN_CHUNK_MACS = MIN_PART_MACS / 4;
/**
 * Least elements per chunk (GELU, its gradient, LayerNorm, layer scale + residual): ~0.015 ms of
 * GELU on one thread. These chunks copy nothing (a claim costs an atomic add), and small ones at the
 * end let the threads finish together.
 */
export const MIN_PART_ELEMENTS = 1 << 14;
/**
 * Least elements of a call that is shared at all, per kernel: a hand-off costs ~0.08 ms (the futex
 * wake-ups of a worker and of the caller), so a call needs some 0.25 ms of one thread's work to
 * gain. At ConvNeXt-T's batch-1 sizes (one call per stage, 2 threads, both cores free) GELU of 150k
 * elements took 1.22x its one-thread time, LayerNorm of 150k 1.5x, layer scale + residual of 301k
 * (0.1 ms: three streams, nothing to compute) 1.2x (bench/results/inference-threads-2026-12-02c.md).
 */
const SPLIT_ELEMENTS = { gelu_f32: 1 << 18, gelu_grad_f32: 1 << 18, layer_norm_f32: 1 << 19, scaled_residual_f32: 1 << 20 } as const;

/**
 * Boundaries of the chunks of a call for `threads` threads that claim them in order: each chunk
 * 1 / (2 * threads) of what is left (OpenMP's guided schedule), at least `min` units, inner
 * boundaries multiples of `align`, at most MAX_CHUNKS. Large chunks first (few claims, little
 * packing), small ones last, so the threads finish within a small chunk of each other however late
 * one started. [0, total] when there is not work for two chunks of `min`.
 */
export function guidedRange(total: number, threads: number, min: number, align = 1): number[] {
  const unit = Math.max(align, Math.ceil(Math.max(1, min) / align) * align);
  const bounds = [0];
  if (threads >= 2) {
    for (let at = 0; bounds.length < MAX_CHUNKS;) {
      const size = Math.max(unit, Math.ceil((total - at) / (2 * threads) / align) * align);
      if (total - at - size < unit) break; // what is left is the last chunk
      at += size;
      bounds.push(at);
    }
  }
  bounds.push(total);
  return bounds;
}

/**
 * gemm.wat's cost per chunk beyond its share of the work, in wasm operations per float copied: a
 * chunk of C's rows copies every panel of B again (B [K, N]: two v128 loads and stores per 8
 * floats; B^T: gathered, a scalar load and store per float); a chunk of its columns packs its rows
 * of A again (A [M, K]: a scalar load and store per float; A^T: a v128 load and store per 4 floats).
 * Indexed by the transpose flag. The work itself: TILE_OPS per multiply-add (the 4 x 8 tile: 6
 * loads, 8 multiplies and 8 adds per 32). An operation count, blind to which operand is still in
 * cache: on ConvNeXt-T's 196x1536x384 (the one product it turns from columns to rows) rows and
 * columns measured equal (bench/results/inference-threads-2026-12-02b.md).
 */
const COPY_B = [0.5, 2];
const PACK_A = [2, 0.5];
const TILE_OPS = 22 / 32;
/** A GEMM chunk does at least this many times the work of its copies (<= 1/16 more work per chunk). */
const GEMM_CHUNK_OVER_COPY = 16;
/**
 * An operand that every chunk copies again and that does not fit a core's L2 (2 MiB here, half of
 * it for the copy) is read from L3 by every chunk: its chunks are made COPY_FROM_L3 times larger.
 * ConvNeXt-T's 196x1536x384 (B 2.4 MB, by rows): 8 chunks of 12-52 rows ran at 0.60x of one thread
 * on 2 threads, 4 chunks of 48-52 rows at 0.54x (bench/results/inference-threads-2026-12-02c.md).
 */
const COPY_L2_BYTES = 1 << 20;
const COPY_FROM_L3 = 4;

type Fn = (...args: number[]) => void;

/** Runs chunk i's arguments argsOf(b[i], b[i + 1]) on the pool's threads (this one with `own`). */
function runChunks(pool: KernelThreads, name: Pooled, own: Fn, bounds: number[], argsOf: (lo: number, hi: number) => number[]): void {
  const chunks: number[][] = [];
  for (let i = 0; i < bounds.length - 1; i++) chunks.push(argsOf(bounds[i], bounds[i + 1]));
  pool.run(op(name), chunks, (args) => own(...args));
}

/** `raw`'s exports with the splittable ones shared among `pool`'s threads. */
export function threadedKernels(raw: SimdExports, pool: KernelThreads): SimdExports {
  const bounds = (total: number, min: number, align = 1): number[] => (pool.live ? guidedRange(total, pool.size, min, align) : [0, total]);
  /** bounds() for a call of `elements` floats of kernel `name`; [0, total] below SPLIT_ELEMENTS[name]. */
  const sharedBounds = (name: keyof typeof SPLIT_ELEMENTS, elements: number, total: number, min: number, align = 1): number[] =>
    elements < SPLIT_ELEMENTS[name] ? [0, total] : bounds(total, min, align);
  const elementwise =
    (name: 'gelu_f32' | 'gelu_grad_f32') =>
    (...ptrsAndSize: number[]): void => {
      const n = ptrsAndSize[ptrsAndSize.length - 1];
      const ptrs = ptrsAndSize.slice(0, -1);
      const b = sharedBounds(name, n, n, MIN_PART_ELEMENTS, 16);
      if (b.length === 2) return (raw[name] as Fn)(...ptrsAndSize);
      runChunks(pool, name, raw[name] as Fn, b, (lo, hi) => [...ptrs.map((p) => p + 4 * lo), hi - lo]);
    };
  const gemm =
    (transa: number, transb: number, name: 'gemm_f32' | 'gemm_tn_f32' | 'gemm_nt_f32') =>
    (a: number, b: number, bias: number, c: number, m: number, k: number, n: number, scratch: number, kc: number, ascratch: number, mc: number): void => {
      const lda = transa ? m : k;
      // Each chunk copies again what it does not split (all of B for a block of rows, all of A for
      // a block of columns): split the way whose copies cost less.
      const byRows = COPY_B[transb] * n <= PACK_A[transa] * m;
      const over = GEMM_CHUNK_OVER_COPY * (4 * k * (byRows ? n : m) > COPY_L2_BYTES ? COPY_FROM_L3 : 1);
      const parts = byRows
        ? bounds(m, Math.max(MIN_PART_MACS / (k * n), (over * COPY_B[transb]) / TILE_OPS), 4)
        : bounds(n, Math.max(MIN_PART_MACS / (k * m), (over * PACK_A[transa]) / TILE_OPS), 8);
      if (parts.length === 2) return raw[name](a, b, bias, c, m, k, n, scratch, kc, ascratch, mc);
      // the caller's scratch, at GEMM_SCRATCH_ARGS: a worker puts its own there
      const [panel, packed] = [scratch, ascratch];
      runChunks(pool, 'gemm_part_f32', raw.gemm_part_f32 as Fn, parts, (lo, hi) => {
        if (byRows) {
          return [transa ? a + 4 * lo : a + 4 * lo * k, b, bias, c + 4 * lo * n, hi - lo, k, n, panel, kc, packed, mc, transa, transb, lda, n];
        }
        // bias 0 (none) and -1 (accumulate into C) are flags, not pointers
        const pb = bias > 0 ? bias + 4 * lo : bias;
        return [a, transb ? b + 4 * lo * k : b + 4 * lo, pb, c + 4 * lo, m, k, hi - lo, panel, kc, packed, mc, transa, transb, lda, n];
      });
    };
  return {
    ...raw,
    depthwise_nhwc(x, w, bias, y, n, h, wd, c, k) {
      const rows = n * h;
      if (!pool.live || rows * wd * c * k * k < MIN_PART_MACS) return raw.depthwise_nhwc(x, w, bias, y, n, h, wd, c, k);
      const blocks = Math.max(1, Math.min(Math.ceil((DEPTHWISE_UNITS_PER_THREAD * pool.size) / rows), Math.floor(c / DEPTHWISE_MIN_BLOCK)));
      const cbw = Math.ceil(c / blocks / 4) * 4; // channels per block (the last may have fewer)
      const units = rows * Math.ceil(c / cbw);
      const b = bounds(units, Math.ceil(DEPTHWISE_MIN_CHUNK_MACS / (wd * cbw * k * k)));
      if (b.length === 2) return raw.depthwise_nhwc(x, w, bias, y, n, h, wd, c, k);
      runChunks(pool, 'depthwise_nhwc_part', raw.depthwise_nhwc_part as Fn, b, (lo, hi) => [x, w, bias, y, h, wd, c, k, lo, hi, cbw]);
    },
    gelu_f32: elementwise('gelu_f32'),
    gelu_grad_f32: elementwise('gelu_grad_f32'),
    layer_norm_f32(x, w, bias, y, rows, c, eps) {
      const b = sharedBounds('layer_norm_f32', rows * c, rows, Math.ceil(MIN_PART_ELEMENTS / c));
      if (b.length === 2) return raw.layer_norm_f32(x, w, bias, y, rows, c, eps);
      runChunks(pool, 'layer_norm_f32', raw.layer_norm_f32 as Fn, b, (lo, hi) => [x + 4 * lo * c, w, bias, y + 4 * lo * c, hi - lo, c, eps]);
    },
    scaled_residual_f32(x, y, gamma, out, rows, c) {
      const b = sharedBounds('scaled_residual_f32', rows * c, rows, Math.ceil(MIN_PART_ELEMENTS / c));
      if (b.length === 2) return raw.scaled_residual_f32(x, y, gamma, out, rows, c);
      runChunks(pool, 'scaled_residual_f32', raw.scaled_residual_f32 as Fn, b, (lo, hi) => [
        x + 4 * lo * c,
        y + 4 * lo * c,
        gamma,
        out + 4 * lo * c,
        hi - lo,
        c,
      ]);
    },
    gemm_f32: gemm(0, 0, 'gemm_f32'),
    gemm_tn_f32: gemm(1, 0, 'gemm_tn_f32'),
    gemm_nt_f32: gemm(0, 1, 'gemm_nt_f32'),
  };
}
