/**
 * InferencePool: model replicas in worker_threads, to use every core on many images. Each replica runs
 * every op of its batch on one core (wasm with one thread by default), so all of a forward pass runs in
 * parallel, not only the ops XNNPACK threads (matMul, conv): for throughput this beats one threaded
 * backend (see src/backend/wasm_threads.ts), which is the better choice for the latency of one image.
 *
 *   const pool = await InferencePool.create(model, { workers: 4 });    // weights shared once
 *   const logits = await pool.run('logits', x, [8, 224, 224, 3]);      // x: NHWC float32, normalised
 *   const emb = await pool.runMany('embed', big, [256, 224, 224, 3]);  // split across workers
 *   await pool.dispose();
 *
 * Weights are packed once into SharedArrayBuffers (shared_weights.ts) and every worker builds its
 * replica from views on them: no file is re-read or re-converted per worker, and the main thread
 * keeps one JS copy. Jobs go to an idle worker, first come first served; the rest wait in a queue.
 * Errors inside a worker reject that job with a PoolError carrying the worker's message; a worker
 * that dies rejects its job and leaves the pool (the others carry on; none left rejects the rest).
 * Idle workers do not keep the process alive.
 */
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { ConfigError, PoolError, ShapeError } from '../errors';
import { FromWorker, RUN_KINDS, RunKind, ToWorker, WorkerInit, WorkerMemory } from './protocol';
import { SharedWeights, WeightsSource, shareWeightsAsync } from './shared_weights';
import { builtOrDisposedAsync } from '../util/dispose';

/** The worker entry, compiled beside this file. */
export const WORKER_SCRIPT = path.join(__dirname, 'worker.js');

export interface PoolOptions {
  /** Worker threads (model replicas). Default os.availableParallelism(). */
  workers?: number;
  /** TF.js backend of every worker (see initBackend). Default 'wasm'. */
  backend?: string;
  /** wasm threads per worker. Default 1: the workers already take every core. */
  threadsPerWorker?: number;
}

type Shape4 = [number, number, number, number];

interface Pending {
  resolve: (v: never) => void;
  reject: (e: Error) => void;
}

interface Job extends Pending {
  id: number;
  kind: RunKind;
  data: Float32Array;
  shape: Shape4;
  transfer: ArrayBuffer[];
}

interface Slot {
  index: number;
  worker: Worker;
  /** Started and holding a replica (until then it stays ref'd and gets no jobs). */
  ready: boolean;
  alive: boolean;
  job: Job | null;
  lastError?: string;
}

function isShared(a: Float32Array): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && a.buffer instanceof SharedArrayBuffer;
}

export class InferencePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  /** Requests answered by a specific worker outside the queue (memory). */
  private readonly side = new Map<number, Pending & { slot: Slot }>();
  private nextId = 1;
  private closed = false;
  private workerBackend = '';

  private constructor(
    private readonly weights: SharedWeights,
    private readonly requestedBackend: string,
    private readonly threadsPerWorker: number,
  ) {}

  /**
   * Starts `workers` replicas of a model (a live ConvNeXt, which stays the caller's, or plain
   * weights). Resolves once every worker is ready; rejects with PoolError if any fails to start.
   */
  static async create(source: WeightsSource, opts: PoolOptions = {}): Promise<InferencePool> {
    const n = opts.workers ?? os.availableParallelism();
    if (!(Number.isInteger(n) && n > 0)) throw new ConfigError(`workers must be a positive integer, got ${opts.workers}`);
    const threads = opts.threadsPerWorker ?? 1;
    if (!(Number.isInteger(threads) && threads > 0)) {
      throw new ConfigError(`threadsPerWorker must be a positive integer, got ${opts.threadsPerWorker}`);
    }
    const pool = new InferencePool(await shareWeightsAsync(source), opts.backend ?? 'wasm', threads);
    return builtOrDisposedAsync(pool, () => Promise.all(Array.from({ length: n }, (_, i) => pool.spawn(i))));
  }

  /** Live workers. */
  get size(): number {
    return this.slots.filter((s) => s.alive).length;
  }

  /** The backend the workers run (tf.getBackend() inside them). */
  get backend(): string {
    return this.workerBackend;
  }

  /** The model config every replica was built from. */
  get config(): SharedWeights['config'] {
    return this.weights.config;
  }

  /** Bytes of float32 weights in shared memory (one copy, whatever the number of workers). */
  get weightBytes(): number {
    return this.weights.bytes;
  }

  /** Values per image of a run's output: classes for logits/probs, channels for embed. */
  outputWidth(kind: RunKind): number {
    const c = this.weights.config;
    return kind === 'embed' || c.numClasses === 0 ? c.dims[3] : c.numClasses;
  }

  private spawn(index: number): Promise<void> {
    const init: WorkerInit = { index, backend: this.requestedBackend, threads: this.threadsPerWorker, weights: this.weights };
    const worker = new Worker(WORKER_SCRIPT, { workerData: init });
    const slot: Slot = { index, worker, ready: false, alive: true, job: null };
    this.slots.push(slot);
    return new Promise<void>((resolve, reject) => {
      worker.on('message', (msg: FromWorker) => {
        if (msg.type === 'ready') {
          slot.ready = true;
          this.workerBackend = msg.backend;
          worker.unref();
          resolve();
          this.pump();
        } else if (msg.type === 'init-error') {
          slot.alive = false;
          reject(new PoolError(`worker ${index} failed to start: ${msg.message}`, index, msg.name));
          void worker.terminate();
        } else {
          this.onReply(slot, msg);
        }
      });
      worker.on('error', (e) => {
        slot.lastError = `${e.name}: ${e.message}`;
      });
      worker.on('messageerror', (e) => {
        slot.lastError = `message could not be read: ${e.message}`;
      });
      worker.on('exit', (code) => {
        const wasAlive = slot.alive;
        slot.alive = false;
        if (!slot.ready) {
          reject(new PoolError(`worker ${index} exited during start-up (code ${code})${slot.lastError ? `: ${slot.lastError}` : ''}`, index));
        }
        if (wasAlive && !this.closed) this.onCrash(slot, code);
      });
    });
  }

  private onCrash(slot: Slot, code: number): void {
    const why = `worker ${slot.index} exited unexpectedly (code ${code})${slot.lastError ? `: ${slot.lastError}` : ''}`;
    if (slot.job) {
      slot.job.reject(new PoolError(why, slot.index));
      slot.job = null;
    }
    for (const [id, p] of this.side) {
      if (p.slot === slot) {
        this.side.delete(id);
        p.reject(new PoolError(why, slot.index));
      }
    }
    if (this.size === 0) {
      for (const job of this.queue.splice(0)) job.reject(new PoolError(`no workers left: ${why}`, slot.index));
    }
  }

  private onReply(slot: Slot, msg: FromWorker): void {
    if (msg.type === 'memory') {
      const p = this.side.get(msg.id);
      this.side.delete(msg.id);
      (p?.resolve as ((m: WorkerMemory) => void) | undefined)?.(msg.memory);
      return;
    }
    if (msg.type !== 'result' && msg.type !== 'error') return;
    const job = slot.job;
    if (!job || job.id !== msg.id) return;
    slot.job = null;
    if (msg.type === 'result') (job.resolve as (v: Float32Array) => void)(msg.data);
    else job.reject(new PoolError(`worker ${slot.index}: ${msg.name}: ${msg.message}`, slot.index, msg.name));
    this.pump();
  }

  /** Hands queued jobs to idle workers, oldest first; idle workers are unref'd. */
  private pump(): void {
    for (const slot of this.slots) {
      if (!slot.ready || !slot.alive || slot.job) continue;
      const job = this.queue.shift();
      if (!job) {
        slot.worker.unref();
        continue;
      }
      const msg: ToWorker = { type: 'run', id: job.id, kind: job.kind, data: job.data, shape: job.shape };
      try {
        slot.worker.postMessage(msg, job.transfer);
      } catch (e) {
        job.reject(new PoolError(`could not send the batch to worker ${slot.index}: ${(e as Error).message}`, slot.index));
        continue;
      }
      slot.job = job;
      slot.worker.ref();
    }
  }

  private checkRun(kind: RunKind, batch: Float32Array, shape: readonly number[]): Shape4 {
    if (this.closed) throw new PoolError('the pool has been disposed');
    if (this.size === 0) throw new PoolError('the pool has no live workers');
    if (!RUN_KINDS.includes(kind)) throw new ConfigError(`kind must be one of ${RUN_KINDS.join(', ')}, got '${kind}'`);
    if (kind === 'probs' && this.weights.config.numClasses === 0) {
      throw new ConfigError(`'probs' needs a classifier head, this model has none (numClasses 0): use 'embed'`);
    }
    if (!(batch instanceof Float32Array)) throw new ShapeError('batch must be a Float32Array (NHWC, normalised)');
    const c = this.weights.config.inChannels;
    if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
      throw new ShapeError(`shape must be NHWC [N, H, W, ${c}] of positive integers, got [${shape}]`);
    }
    if (shape[3] !== c) throw new ShapeError(`shape must be NHWC [N, H, W, ${c}], got [${shape}]`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (batch.length !== size) throw new ShapeError(`batch has ${batch.length} values, shape [${shape}] needs ${size}`);
    return [...shape] as Shape4;
  }

  /**
   * Runs one batch on the next idle worker.
   * @param batch NHWC float32 [N, H, W, C], normalised. Its ArrayBuffer is transferred (detached
   *   here: batch.length becomes 0) when the array spans all of it; a partial view is copied; a
   *   SharedArrayBuffer is shared. NOTE: an array you do not own, e.g. dataSync() of a tensor on
   *   the cpu backend (its storage), must not be transferred: pass { transfer: false } to copy.
   * @returns row-major [N, outputWidth(kind)]
   */
  async run(kind: RunKind, batch: Float32Array, shape: readonly number[], opts: { transfer?: boolean } = {}): Promise<Float32Array> {
    const s = this.checkRun(kind, batch, shape);
    let data = batch;
    const transfer: ArrayBuffer[] = [];
    if (!isShared(batch)) {
      const whole = batch.byteOffset === 0 && batch.byteLength === batch.buffer.byteLength;
      if (!whole || opts.transfer === false) data = batch.slice();
      transfer.push(data.buffer as ArrayBuffer);
    }
    return new Promise<Float32Array>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, kind, data, shape: s, transfer, resolve: resolve as Pending['resolve'], reject });
      this.pump();
    });
  }

  /**
   * Splits a batch into chunks (default: one per live worker), runs them concurrently and returns
   * the rows in input order. The caller's array is left intact (chunks are copies, or views when
   * it lives on a SharedArrayBuffer).
   * @returns row-major [N, outputWidth(kind)]
   */
  async runMany(kind: RunKind, batch: Float32Array, shape: readonly number[], opts: { chunkSize?: number } = {}): Promise<Float32Array> {
    const [n, h, w, c] = this.checkRun(kind, batch, shape);
    const chunk = opts.chunkSize ?? Math.ceil(n / this.size);
    if (!(Number.isInteger(chunk) && chunk > 0)) throw new ConfigError(`chunkSize must be a positive integer, got ${opts.chunkSize}`);
    const per = h * w * c;
    const parts: Promise<Float32Array>[] = [];
    for (let start = 0; start < n; start += chunk) {
      const end = Math.min(n, start + chunk);
      const part = isShared(batch) ? batch.subarray(start * per, end * per) : batch.slice(start * per, end * per);
      parts.push(this.run(kind, part, [end - start, h, w, c]));
    }
    const outs = await Promise.all(parts);
    const result = new Float32Array(n * this.outputWidth(kind));
    let offset = 0;
    for (const o of outs) {
      result.set(o, offset);
      offset += o.length;
    }
    return result;
  }

  /** Each live worker's tf.memory() (numTensors, numBytes); meaningful when the pool is idle. */
  async memory(): Promise<WorkerMemory[]> {
    if (this.closed) throw new PoolError('the pool has been disposed');
    return Promise.all(
      this.slots
        .filter((s) => s.alive)
        .map((slot) =>
          new Promise<WorkerMemory>((resolve, reject) => {
            const id = this.nextId++;
            this.side.set(id, { slot, resolve: resolve as Pending['resolve'], reject });
            slot.worker.ref();
            slot.worker.postMessage({ type: 'memory', id } satisfies ToWorker);
          }).finally(() => {
            if (!slot.job) slot.worker.unref();
          }),
        ),
    );
  }

  /**
   * Stops every worker. Queued and running jobs reject with PoolError; the pool cannot be used
   * afterwards and keeps nothing alive. Idempotent.
   */
  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = (): PoolError => new PoolError('the pool was disposed before the job finished');
    for (const job of this.queue.splice(0)) job.reject(err());
    for (const slot of this.slots) {
      if (slot.job) slot.job.reject(err());
      slot.job = null;
    }
    for (const p of this.side.values()) p.reject(err());
    this.side.clear();
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    for (const s of this.slots) s.alive = false;
  }

  /** Same as dispose(). */
  terminate(): Promise<void> {
    return this.dispose();
  }
}
