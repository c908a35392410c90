/**
 * The shared-memory protocol between the kernel thread pool (pool.ts) and its threads
 * (pool_worker.ts); a module of its own so a worker loads nothing else of the library.
 *
 * One call at a time: the caller writes each chunk's arguments and the op, resets DONE, publishes
 * NEXT = tag << 24 | chunks << 16 (chunk 0 next), bumps SEQ and wakes the workers. Every thread, the
 * caller too, claims chunks with Atomics.add(NEXT, 1): the value it gets back says which call (tag),
 * how many chunks it has and which one is claimed. A claim below the count is valid, and the call's
 * arguments stay in place until it is done (the call cannot finish without it); a claim past the
 * count (a late thread) is no work, and if it lands on a newer call's word it decodes as that call's
 * chunk, which it then runs. Each finished chunk adds to DONE; the caller waits for DONE = chunks,
 * never for a thread that did not get its core in time.
 */

/** Indices of the control words (Int32Array over a SharedArrayBuffer). */
export const CTRL = {
  /** Bumped per call (and to stop); the workers wait on it. */
  seq: 0,
  /** tag (7 bits) << 24 | chunks (8 bits) << 16 | next chunk to claim (16 bits). */
  next: 1,
  /** Chunks of the current call done. */
  done: 2,
  /** Set (1) when a chunk threw; cleared by the caller. */
  failed: 3,
  /** The op (index in split.ts's POOLED_EXPORTS) of the current call. */
  op: 4,
  /** 1: the workers end. */
  stop: 5,
  /** Words in all. */
  size: 6,
} as const;

/** Argument slots per chunk (float64: exact for pointers, sizes and a float32 eps). */
export const ARGS_PER_CHUNK = 16;

/** Decodes a value of the NEXT word: [tag, chunks, claimed chunk]. */
export function decodeNext(v: number): [number, number, number] {
  return [(v >>> 24) & 0x7f, (v >>> 16) & 0xff, v & 0xffff];
}

/** What a worker gets as workerData. */
export interface PoolWorkerData {
  /** The backend's shared WebAssembly.Memory. */
  memory: object;
  /** Int32 control words (CTRL). */
  ctrl: SharedArrayBuffer;
  /** ARGS_PER_CHUNK float64 slots per chunk, split.ts's MAX_CHUNKS chunks. */
  args: SharedArrayBuffer;
  /** This worker's GEMM scratch on the heap (split.ts's GEMM_SCRATCH_ARGS). */
  scratch: { panel: number; packedA: number };
  /** Whether the caller's kernels are the fma variants (fma.ts): every thread runs the same ones. */
  fma: boolean;
}
