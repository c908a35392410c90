/**
 * The shared-memory protocol between the kernel thread pool (pool.ts) and its threads
 * (pool_worker.ts); a module of its own so a worker loads nothing else of the library.
 */

/** Layout of the control words (Int32Array over a SharedArrayBuffer). */
export const CTRL = {
  /** Parts of the current call not yet done. */
  pending: 0,
  /** Set (1) when a worker's part threw; cleared by the caller. */
  failed: 1,
  /** Worker i's sequence word (bumped per part handed to it) at seq(i), its op (-1: stop) at seq(i) + 1. */
  seq: (i: number): number => 2 * i,
} as const;

/** Arguments per part: float64 slots per worker (exact for pointers, sizes and a float32 eps). */
export const ARGS_PER_PART = 16;

/** What a worker gets as workerData. */
export interface PoolWorkerData {
  /** The backend's shared WebAssembly.Memory. */
  memory: object;
  /** Int32 control words (CTRL). */
  ctrl: SharedArrayBuffer;
  /** ARGS_PER_PART float64 slots per thread, slot i for worker i. */
  args: SharedArrayBuffer;
  /** 1 .. size - 1 */
  index: number;
}
