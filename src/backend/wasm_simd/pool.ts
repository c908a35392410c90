/**
 * The kernel thread pool of our SIMD kernels on the threaded wasm backend (Node): threads - 1
 * worker_threads (pool_worker.ts), each instantiating the same .shared.wasm kernel modules against
 * the backend's shared WebAssembly.Memory, so a kernel call's parts (split.ts) run on every thread
 * over the one heap. XNNPACK's own pthreadpool threads only the package's kernels (matMul, conv);
 * without this our depthwise, GELU, LayerNorm and GEMM ran on the calling thread alone.
 *
 * Dispatch is by shared memory alone, no postMessage per call: worker i waits (Atomics.wait) on its
 * sequence word; the caller writes the part's arguments (float64: exact for pointers, sizes and the
 * float32 eps), sets the pending count, bumps and notifies each worker's word, runs its own part,
 * then Atomics.waits on the pending count (allowed on Node's main thread) until the last worker
 * notifies it. Workers are unref'd (blocked in Atomics.wait, they never keep the process alive).
 * A pool that fails to start is no error: the kernels stay on the calling thread.
 */
import * as path from 'path';
import { Worker } from 'worker_threads';
import { HeapBackend, attachKernelThreads, isHeapBackend, kernelThreadsOf, sharedHeapOf } from './kernels';
import { allocGemmScratch } from './matmul';
import { ARGS_PER_PART, CTRL, PoolWorkerData } from './pool_protocol';
import { KernelThreads } from './split';

/** Start-up may not take longer than this (a worker boots and compiles five ~3 KB modules in ~50 ms). */
const START_TIMEOUT_MS = 20_000;

class KernelPool implements KernelThreads {
  live = true;
  /** Calls handed to the workers so far (for tests and benchmarks). */
  calls = 0;
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array;

  constructor(
    readonly size: number,
    readonly scratch: readonly { panel: number; packedA: number }[],
    ctrl: SharedArrayBuffer,
    args: SharedArrayBuffer,
    private readonly workers: Worker[],
  ) {
    this.ctrl = new Int32Array(ctrl);
    this.args = new Float64Array(args);
  }

  post(op: number, parts: readonly (readonly number[])[]): void {
    const { ctrl, args } = this;
    this.calls++;
    Atomics.store(ctrl, CTRL.pending, parts.length);
    for (let i = 1; i <= parts.length; i++) {
      const p = parts[i - 1];
      const base = i * ARGS_PER_PART;
      for (let j = 0; j < p.length; j++) args[base + j] = p[j];
      ctrl[CTRL.seq(i) + 1] = op;
      Atomics.add(ctrl, CTRL.seq(i), 1);
      Atomics.notify(ctrl, CTRL.seq(i), 1);
    }
  }

  join(): void {
    const { ctrl } = this;
    for (let left = Atomics.load(ctrl, CTRL.pending); left !== 0; left = Atomics.load(ctrl, CTRL.pending)) Atomics.wait(ctrl, CTRL.pending, left);
    if (Atomics.exchange(ctrl, CTRL.failed, 0) !== 0) throw new Error('a SIMD kernel thread failed on its part of the call (see pool_worker.ts)');
  }

  /** Ends the workers (after the call in flight, if any). */
  stop(): Promise<void> {
    this.live = false;
    for (let i = 1; i < this.size; i++) {
      this.ctrl[CTRL.seq(i) + 1] = -1;
      Atomics.add(this.ctrl, CTRL.seq(i), 1);
      Atomics.notify(this.ctrl, CTRL.seq(i), 1);
    }
    // Referenced again while they wind down: an unref'd worker's exit would not hold the event loop.
    const exits = this.workers.map((w) => new Promise<void>((resolve) => (w.threadId < 0 ? resolve() : (w.ref(), w.once('exit', () => resolve())))));
    return Promise.all(exits).then(() => {});
  }
}

const starting = new WeakMap<object, Promise<boolean>>();

/** The workers' entry file. */
const WORKER_ENTRY = path.join(__dirname, 'pool_worker.js');

function startWorker(entry: string, data: PoolWorkerData): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(entry, { workerData: data });
    const timer = setTimeout(() => fail(new Error('no answer')), START_TIMEOUT_MS);
    const fail = (e: unknown): void => {
      clearTimeout(timer);
      void worker.terminate();
      reject(e);
    };
    worker.once('error', fail);
    worker.once('exit', (code) => fail(new Error(`exited with code ${code}`)));
    worker.once('message', (m) => {
      clearTimeout(timer);
      worker.removeAllListeners();
      if (m !== 'ready') return fail(new Error(String(m)));
      resolve(worker);
    });
  });
}

/**
 * Starts `threads` - 1 kernel threads for `backend` (the threaded wasm backend: its heap must be a
 * shared memory) and attaches them to its SIMD kernels. Resolves true once they serve; false when
 * there is nothing to do (one thread, an unshared heap) or the pool could not start, in which case
 * the kernels run on the calling thread, as before. Idempotent per backend; never rejects.
 * `entry`: the workers' entry file (tests give a broken one).
 */
export function startKernelThreads(backend: unknown, threads: number, entry = WORKER_ENTRY): Promise<boolean> {
  if (!isHeapBackend(backend) || threads < 2 || !sharedHeapOf(backend)) return Promise.resolve(false);
  if (kernelThreadsOf(backend)) return Promise.resolve(true);
  let started = starting.get(backend);
  if (!started) {
    started = start(backend, threads, entry).catch(() => false);
    starting.set(backend, started);
    // A start that failed may be tried again (another entry, or after stopKernelThreads).
    void started.then((ok) => ok || starting.delete(backend));
  }
  return started;
}

async function start(backend: HeapBackend, threads: number, entry: string): Promise<boolean> {
  const memory = sharedHeapOf(backend)!;
  const ctrl = new SharedArrayBuffer(4 * CTRL.seq(threads));
  const args = new SharedArrayBuffer(8 * ARGS_PER_PART * threads);
  const settled = await Promise.allSettled(Array.from({ length: threads - 1 }, (_, i) => startWorker(entry, { memory, ctrl, args, index: i + 1 })));
  const workers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  if (workers.length !== threads - 1) {
    await Promise.all(workers.map((w) => w.terminate()));
    return false;
  }
  const scratch = [{ panel: 0, packedA: 0 }, ...workers.map(() => allocGemmScratch(backend))];
  const pool = new KernelPool(threads, scratch, ctrl, args, workers);
  for (const w of workers) {
    // A worker that dies takes the pool down with it: later calls run on the calling thread.
    const down = (): void => {
      pool.live = false;
    };
    w.on('error', down);
    w.on('exit', down);
    w.unref();
  }
  attachKernelThreads(backend, pool);
  return true;
}

/** Detaches and ends `backend`'s kernel threads (its kernels go back to the calling thread). */
export async function stopKernelThreads(backend: unknown): Promise<void> {
  const pool = kernelThreadsOf(backend);
  if (!(pool instanceof KernelPool)) return;
  attachKernelThreads(backend, null);
  starting.delete(backend as object);
  await pool.stop();
}
