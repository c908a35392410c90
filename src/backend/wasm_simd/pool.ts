/**
 * The kernel thread pool of our SIMD kernels on the threaded wasm backend (Node): threads - 1
 * worker_threads (pool_worker.ts), each instantiating the same .shared.wasm kernel modules against
 * the backend's shared WebAssembly.Memory, so a kernel call's chunks (split.ts) run on every thread
 * over the one heap. XNNPACK's own pthreadpool threads only the package's kernels (matMul, conv);
 * without this our depthwise, GELU, LayerNorm and GEMM ran on the calling thread alone.
 *
 * Dispatch is by shared memory alone, no postMessage per call (pool_protocol.ts): the caller writes
 * the chunks' arguments, wakes the workers (Atomics.notify), claims chunks itself like any of them,
 * then Atomics.waits (allowed on Node's main thread) until the last chunk is done. Chunks are
 * claimed, not assigned: a worker that is late to its core leaves its share to the others. Workers
 * are unref'd (blocked in Atomics.wait, they never keep the process alive).
 * A pool that fails to start is no error: the kernels stay on the calling thread.
 */
import * as path from 'path';
import { Worker } from 'worker_threads';
import { BackendError } from '../../errors';
import { HeapBackend, attachKernelThreads, fusedKernels, isHeapBackend, kernelThreadsOf, sharedHeapOf } from './kernels';
import { allocGemmScratch } from './matmul';
import { ARGS_PER_CHUNK, CTRL, PoolWorkerData, decodeNext } from './pool_protocol';
import { KernelThreads, MAX_CHUNKS } from './split';

/** Start-up may not take longer than this (a worker boots and compiles five ~3 KB modules in ~50 ms). */
const START_TIMEOUT_MS = 20_000;
/** A call whose chunks make no progress for this long has lost a worker (a chunk takes milliseconds to seconds). */
const STALL_MS = 120_000;

class KernelPool implements KernelThreads {
  live = true;
  /** Calls run on the threads so far (for tests and benchmarks). */
  calls = 0;
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array;
  private tag = 0;

  constructor(
    readonly size: number,
    ctrl: SharedArrayBuffer,
    args: SharedArrayBuffer,
    private readonly workers: Worker[],
  ) {
    this.ctrl = new Int32Array(ctrl);
    this.args = new Float64Array(args);
  }

  run(op: number, chunks: readonly (readonly number[])[], own: (args: readonly number[]) => void): void {
    const { ctrl, args } = this;
    const n = chunks.length;
    if (n > MAX_CHUNKS) throw new Error(`kernel call of ${n} chunks: at most ${MAX_CHUNKS}`);
    this.calls++;
    for (let i = 0; i < n; i++) args.set(chunks[i], i * ARGS_PER_CHUNK);
    Atomics.store(ctrl, CTRL.op, op);
    Atomics.store(ctrl, CTRL.done, 0);
    this.tag = (this.tag + 1) & 0x7f;
    Atomics.store(ctrl, CTRL.next, (this.tag << 24) | (n << 16));
    Atomics.add(ctrl, CTRL.seq, 1);
    Atomics.notify(ctrl, CTRL.seq, this.size - 1);
    let error: unknown = null;
    for (;;) {
      const [, , i] = decodeNext(Atomics.add(ctrl, CTRL.next, 1));
      if (i >= n) break;
      try {
        own(chunks[i]);
      } catch (e) {
        error ??= e;
      }
      Atomics.add(ctrl, CTRL.done, 1);
    }
    // The workers write the heap: never return (or throw) before their chunks are done. A worker
    // that dies mid-chunk cannot say so (its 'exit' event needs this thread's event loop): a call
    // that makes no progress for STALL_MS turns the pool off and fails instead of waiting forever.
    let last = Atomics.load(ctrl, CTRL.done);
    let since = Date.now();
    for (let done = last; done < n; done = Atomics.load(ctrl, CTRL.done)) {
      if (done !== last) [last, since] = [done, Date.now()];
      else if (Date.now() - since > STALL_MS) {
        this.live = false;
        throw new BackendError(
          `a SIMD kernel thread stopped responding (${done} of ${n} chunks done, none for ${STALL_MS / 1000} s); kernel threads are off from here`,
        );
      }
      Atomics.wait(ctrl, CTRL.done, done, 1000);
    }
    if (error) throw error;
    if (Atomics.exchange(ctrl, CTRL.failed, 0) !== 0) throw new BackendError('a SIMD kernel thread failed on its chunk of the call (see pool_worker.ts)');
  }

  /** Ends the workers (after the call in flight, if any). */
  stop(): Promise<void> {
    this.live = false;
    Atomics.store(this.ctrl, CTRL.stop, 1);
    Atomics.add(this.ctrl, CTRL.seq, 1);
    Atomics.notify(this.ctrl, CTRL.seq);
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
  const ctrl = new SharedArrayBuffer(4 * CTRL.size);
  const args = new SharedArrayBuffer(8 * ARGS_PER_CHUNK * MAX_CHUNKS);
  const fma = fusedKernels(backend);
  const data = (): PoolWorkerData => ({ memory, ctrl, args, scratch: allocGemmScratch(backend), fma });
  const settled = await Promise.allSettled(Array.from({ length: threads - 1 }, () => startWorker(entry, data())));
  const workers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  if (workers.length !== threads - 1) {
    await Promise.all(workers.map((w) => w.terminate()));
    return false;
  }
  const pool = new KernelPool(threads, ctrl, args, workers);
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
