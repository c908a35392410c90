/**
 * Chunked compute inside a replica (issue 11, "convnext_tiny 224 b16"): a share larger than the
 * chunk size runs forward and backward in chunks of at most that many samples, whose mean gradients
 * are combined count-weighted exactly as micro-batches are (task.ts ResultMean), and whose loss sums and
 * correct counts add up. A chunk holds whole aligned pairs (global index i and i xor 1, the
 * Mixup/CutMix partners), and everything random about a sample is keyed by its global index
 * (task.ts), so a chunked share equals the unchunked one up to float summation order.
 *
 * Also the one place that recognises tfjs-backend-wasm running out of its heap (heapExhausted) and
 * turns it into OutOfMemoryError.
 */
import * as tf from '@tensorflow/tfjs-core';
import { OutOfMemoryError } from '../../errors';
import { ResultMean, ShareResult } from './task';

/** How many samples a replica computes at once: a number (even), or 'auto' (footprint.ts on wasm; no limit elsewhere). */
export type ChunkSize = number | 'auto';

/** Whether `v` is a valid chunk size: 'auto' or an even integer >= 2 (chunks hold whole pairs). */
export function isChunkSize(v: unknown): v is ChunkSize {
  return v === 'auto' || (typeof v === 'number' && Number.isInteger(v) && v >= 2 && v % 2 === 0);
}

/** The rule isChunkSize checks, for error messages. */
export const CHUNK_SIZE_RULE = "'auto' or an even integer >= 2";

/**
 * The most samples a replica computes at once: N as given; 'auto' (the default) `auto()` on the
 * wasm backend, whose 4 GB heap is the limit, and no limit (Infinity) on the others.
 */
export function chunkLimit(chunkSize: ChunkSize | undefined, backend: string, auto: () => number): number {
  if (typeof chunkSize === 'number') return chunkSize;
  return backend === 'wasm' ? auto() : Infinity;
}

/**
 * A decoded share split into chunks of at most `limit` samples, as local index ranges [a, b):
 * consecutive samples, never separating a global pair (positions are global indices, ascending;
 * a pair whose partner was skipped counts as one sample).
 */
export function chunkRanges(positions: readonly number[], limit: number): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < positions.length;) {
    let j = i + 1;
    if (j < positions.length && positions[j] >> 1 === positions[i] >> 1) j++;
    if (j - start > limit && i > start) {
      out.push([start, i]);
      start = i;
    }
    i = j;
  }
  if (positions.length > start) out.push([start, positions.length]);
  return out;
}

/**
 * A chunk's ShareResult from tf.variableGrads' output: `grads` renamed by `nameOf` (tf.Variable name
 * -> parameter name), the mean loss read from `value` (disposed) times n, and `correct` (read after
 * the loss; 0 by default). The gradients are disposed when a read fails.
 */
export async function chunkResult(
  out: { value: tf.Scalar; grads: tf.NamedTensorMap },
  nameOf: (tfName: string) => string,
  n: number,
  correct: () => Promise<number> = async () => 0,
): Promise<ShareResult> {
  const grads = new Map(Object.entries(out.grads).map(([k, g]) => [nameOf(k), g]));
  try {
    const loss = (await out.value.data())[0];
    return { grads, n, lossSum: loss * n, correct: await correct() };
  } catch (e) {
    tf.dispose([...grads.values()]);
    throw e;
  } finally {
    out.value.dispose();
  }
}

/**
 * Runs `compute` on every chunk and combines the results (ResultMean: the count-weighted mean; one
 * chunk passes through unchanged). Gradients of finished chunks are disposed when a later one throws.
 */
export async function computeInChunks(ranges: readonly [number, number][], compute: (range: [number, number]) => Promise<ShareResult>): Promise<ShareResult> {
  const mean = new ResultMean();
  try {
    for (const [a, b] of ranges) mean.add(await compute([a, b]));
  } catch (e) {
    mean.dispose();
    throw e;
  }
  return mean.result();
}

/**
 * Whether `e` is tfjs-backend-wasm running out of its heap: emscripten's abort
 * (`WebAssembly.RuntimeError: Aborted(...)`, what a failed malloc or heap grow ends in) or a failed
 * WebAssembly.Memory grow / buffer allocation (RangeError).
 */
export function heapExhausted(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e.name === 'RuntimeError' && /^Aborted\(/.test(e.message)) return true;
  return e instanceof RangeError && /WebAssembly\.Memory|Cannot enlarge memory|Array buffer allocation failed/.test(e.message);
}

/**
 * `compute`, with a heap abort turned into OutOfMemoryError naming the sizes and `fixes`. NOTE: after
 * such an abort the wasm module is dead (every later kernel call aborts again), so this is not a
 * retry point: the error stops the run.
 */
export async function withHeapError<T>(
  sizes: { chunk: number; share: number; imageSize: number },
  fixes: OutOfMemoryError['detail']['fixes'],
  compute: () => Promise<T>,
): Promise<T> {
  try {
    return await compute();
  } catch (e) {
    if (!heapExhausted(e)) throw e;
    throw new OutOfMemoryError({ ...sizes, fixes, cause: `${(e as Error).name}: ${(e as Error).message}` });
  }
}
