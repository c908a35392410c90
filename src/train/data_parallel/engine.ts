/**
 * Data-parallel training steps (issue 11 §1), for the classifier trainer and FCMAE pretraining alike.
 * The main thread keeps the master weights, the optimizer, EMA, schedule, checkpoints and
 * evaluation; the engine turns a step (its micro-batches) into the step's mean gradient:
 *
 *   workers 1   in this thread, on the master model itself (no copy, no thread)
 *   workers N   N worker threads, one replica each (wasm, one thread). Each decodes and augments
 *               its share of every micro-batch itself (task.ts shareRange), runs forward and
 *               backward, and writes count x mean gradient, summed over the step's micro-batches,
 *               into its region of one SharedArrayBuffer; then prefetches its share of the next
 *               step. The main thread adds the regions and divides by the step's sample count (the
 *               mean over the global batch), the caller applies one optimizer step, and publish()
 *               writes the new trainable weights once into shared memory, which every replica loads
 *               before its next step. Messages carry step numbers and figures, never tensors.
 *
 *   const engine = await createEngine({ workers: 'auto', variables, trainable, taskModule, taskOptions, inProcess });
 *   const r = await engine.step(ref, next);   // r.grads: mean gradient by name (caller disposes)
 *   opt.apply(r.grads, lr); await engine.publish();
 *   await engine.dispose();
 *
 * A worker that throws or dies rejects the step with TrainWorkerError naming it; the caller stops
 * (its last checkpoint on disk is whole: they are written atomically).
 */
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, TrainWorkerError } from '../../errors';
import { SharedParam, viewOf } from '../../parallel/shared_weights';
import { FromTrainWorker, ToTrainWorker, TrainWorkerInit } from './protocol';
import { MicroRef, ReplicaTask, ShareResult, StepRef, microRefs } from './task';
import { builtOrDisposedAsync } from '../../util/dispose';

/** The worker entry, compiled beside this file. */
export const TRAIN_WORKER_SCRIPT = path.join(__dirname, 'worker.js');

/** One step's outcome: the mean gradient over its samples and the step's figures. */
export interface StepOutcome {
  /** Mean gradient by trainable parameter name; empty when no sample could be used. The caller disposes. */
  grads: Map<string, tf.Tensor>;
  n: number;
  lossSum: number;
  correct: number;
  /** Each worker's time computing this step (weights loaded to gradients written); absent in this thread. */
  workerMs?: number[];
}

export interface DataParallelEngine {
  /** Replicas computing (1: in this thread). */
  readonly workers: number;
  step(ref: StepRef, next: StepRef | null): Promise<StepOutcome>;
  /** After the optimizer changed the master weights: the replicas see them from the next step on. */
  publish(): Promise<void>;
  dispose(): Promise<void>;
}

export interface EngineOptions {
  /** Worker threads; 'auto': os.availableParallelism(). */
  workers: number | 'auto';
  /** Samples per global micro-batch: more workers than its pairs would idle, so 'auto' stops there. */
  batchSize: number;
  /** The master variables by name (the replicas' layout) and which of them train. */
  variables: Map<string, tf.Variable>;
  trainable: string[];
  /** Compiled module exporting createReplicaTask(taskOptions, onSkip), for the workers. */
  taskModule: string;
  taskOptions: unknown;
  /** Builds the task on the master model, for workers 1. */
  inProcess: () => ReplicaTask;
  onSkip?: (file: string, reason: string) => void;
  /** Backend of the workers (default: this thread's). */
  backend?: string;
}

/** The worker count a run uses: 'auto' is every core, capped at the micro-batch's pairs. */
export function resolveTrainWorkers(workers: number | 'auto' | undefined, batchSize: number): number {
  const pairs = Math.ceil(batchSize / 2);
  if (workers === undefined || workers === 'auto') return Math.max(1, Math.min(os.availableParallelism(), pairs));
  if (!(Number.isInteger(workers) && workers >= 1)) throw new ConfigError(`workers must be 'auto' or a positive integer, got ${String(workers)}`);
  if (workers > pairs)
    throw new ConfigError(`workers ${workers} exceeds the ${pairs} sample pair(s) of a batch of ${batchSize} (each worker takes whole pairs): lower workers`);
  return workers;
}

/** Starts the engine: in this thread for one worker, else worker threads (resolves when every replica is ready). */
export async function createEngine(o: EngineOptions): Promise<DataParallelEngine> {
  const n = resolveTrainWorkers(o.workers, o.batchSize);
  if (n === 1) return new InProcessEngine(o.inProcess(), o.batchSize);
  return WorkerEngine.start(n, o);
}

/** Adds `g` x `scale` into acc[name] (taking ownership of g). */
function accumulate(acc: Map<string, tf.Tensor>, grads: Map<string, tf.Tensor>, scale: number): void {
  for (const [k, g] of grads) {
    const prev = acc.get(k);
    const scaled = scale === 1 ? g : tf.mul(g, scale);
    if (scaled !== g) g.dispose();
    if (!prev) acc.set(k, scaled);
    else {
      acc.set(k, tf.add(prev, scaled));
      tf.dispose([prev, scaled]);
    }
  }
}

/** workers 1: the task runs on the master model; the next micro-batch is decoded ahead. */
class InProcessEngine implements DataParallelEngine {
  readonly workers = 1;
  private ahead: { key: string; p: Promise<unknown> } | null = null;

  constructor(
    private readonly task: ReplicaTask,
    private readonly batchSize: number,
  ) {}

  private load(m: MicroRef): Promise<unknown> {
    const key = `${m.epoch}/${m.batch}`;
    const p = this.ahead?.key === key ? this.ahead.p : this.task.load(m, [0, this.batchSize]);
    this.ahead = null;
    return p;
  }

  async step(ref: StepRef, next: StepRef | null): Promise<StepOutcome> {
    const micros = microRefs(ref);
    const results: ShareResult[] = [];
    try {
      for (let i = 0; i < micros.length; i++) {
        const loaded = await this.load(micros[i]);
        const after = i + 1 < micros.length ? micros[i + 1] : next ? microRefs(next)[0] : null;
        if (after) {
          const p = this.task.load(after, [0, this.batchSize]);
          p.catch(() => undefined); // surfaced when awaited
          this.ahead = { key: `${after.epoch}/${after.batch}`, p };
        }
        results.push(await this.task.compute(loaded, micros[i]));
      }
    } catch (e) {
      for (const r of results) tf.dispose([...r.grads.values()]);
      throw e;
    }
    const n = results.reduce((a, r) => a + r.n, 0);
    const grads = new Map<string, tf.Tensor>();
    // Count-weighted: one micro-batch (the usual case) passes its gradient through unchanged.
    for (const r of results) accumulate(grads, r.grads, r.n === n ? 1 : r.n / n);
    return { grads, n, lossSum: results.reduce((a, r) => a + r.lossSum, 0), correct: results.reduce((a, r) => a + r.correct, 0) };
  }

  async publish(): Promise<void> {
    // The task trains the master variables themselves.
  }

  async dispose(): Promise<void> {
    this.ahead = null;
  }
}

/** Float32 views laid out back to back on one new SharedArrayBuffer. */
function layout(names: string[], shapes: number[][]): SharedParam[] {
  const total = shapes.reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  const buffer = new SharedArrayBuffer(total * 4);
  let offset = 0;
  return names.map((name, i) => {
    const length = shapes[i].reduce((x, y) => x * y, 1);
    const p = { name, shape: [...shapes[i]], buffer, byteOffset: offset * 4, length };
    offset += length;
    return p;
  });
}

interface Slot {
  index: number;
  worker: Worker;
  alive: boolean;
  lastError?: string;
  grads: SharedParam[];
}

interface Pending {
  step: number;
  results: (Extract<FromTrainWorker, { type: 'done' }> | null)[];
  resolve: () => void;
  reject: (e: Error) => void;
}

class WorkerEngine implements DataParallelEngine {
  private readonly slots: Slot[] = [];
  private pending: Pending | null = null;
  private failure: TrainWorkerError | null = null;
  private version = 0;
  private closed = false;

  private constructor(
    readonly workers: number,
    private readonly o: EngineOptions,
    private readonly weights: SharedParam[],
  ) {}

  static async start(n: number, o: EngineOptions): Promise<WorkerEngine> {
    const names = [...o.variables.keys()];
    const weights = layout(
      names,
      names.map((k) => o.variables.get(k)!.shape),
    );
    for (let i = 0; i < names.length; i++) viewOf(weights[i]).set((await o.variables.get(names[i])!.data()) as Float32Array);
    const engine = new WorkerEngine(n, o, weights);
    return builtOrDisposedAsync(engine, () => Promise.all(Array.from({ length: n }, (_, i) => engine.spawn(i))));
  }

  private spawn(index: number): Promise<void> {
    const o = this.o;
    const grads = layout(
      o.trainable,
      o.trainable.map((k) => o.variables.get(k)!.shape),
    );
    const init: TrainWorkerInit = {
      index,
      workers: this.workers,
      backend: o.backend ?? tf.getBackend(),
      taskModule: o.taskModule,
      taskOptions: o.taskOptions,
      weights: this.weights,
      trainable: o.trainable,
      grads,
    };
    const worker = new Worker(TRAIN_WORKER_SCRIPT, { workerData: init });
    const slot: Slot = { index, worker, alive: true, grads };
    this.slots.push(slot);
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (msg: FromTrainWorker) => {
        if (msg.type === 'ready') {
          ready = true;
          resolve();
        } else if (msg.type === 'init-error') {
          reject(new TrainWorkerError(`training worker ${index} failed to start: ${msg.name}: ${msg.message}`, index, msg.name));
        } else if (msg.type === 'skip') {
          o.onSkip?.(msg.file, msg.reason);
        } else if (msg.type === 'done') {
          const p = this.pending;
          if (!p || p.step !== msg.step) return;
          p.results[index] = msg;
          if (p.results.every((r) => r !== null)) p.resolve();
        } else if (msg.type === 'error') {
          this.fail(new TrainWorkerError(`training worker ${index} failed at step ${msg.step + 1}: ${msg.name}: ${msg.message}`, index, msg.name));
        }
      });
      worker.on('error', (e) => {
        slot.lastError = `${e.name}: ${e.message}`;
      });
      worker.on('exit', (code) => {
        slot.alive = false;
        const why = `training worker ${index} exited unexpectedly (code ${code})${slot.lastError ? `: ${slot.lastError}` : ''}`;
        if (!ready) reject(new TrainWorkerError(`${why} during start-up`, index));
        else if (!this.closed) this.fail(new TrainWorkerError(why, index));
      });
    });
  }

  private fail(e: TrainWorkerError): void {
    if (!this.failure) this.failure = e;
    const p = this.pending;
    this.pending = null;
    p?.reject(this.failure);
  }

  async step(ref: StepRef, next: StepRef | null): Promise<StepOutcome> {
    if (this.failure) throw this.failure;
    if (this.closed) throw new TrainWorkerError('the training engine has been disposed');
    const done = new Promise<void>((resolve, reject) => {
      this.pending = { step: ref.step, results: this.slots.map(() => null), resolve, reject };
    });
    const msg: ToTrainWorker = { type: 'step', version: this.version, ref, next };
    for (const s of this.slots) s.worker.postMessage(msg);
    await done;
    const results = this.pending!.results as Extract<FromTrainWorker, { type: 'done' }>[];
    this.pending = null;
    const n = results.reduce((a, r) => a + r.n, 0);
    const grads = new Map<string, tf.Tensor>();
    if (n > 0) {
      // Sum of every worker's count x mean gradient, over the step's samples: the global mean
      // (added in the backend: its vector code beats a JS loop over shared memory several times).
      this.o.trainable.forEach((name, i) => {
        const shape = this.slots[0].grads[i].shape;
        const parts = this.slots.map((s) => tf.tensor(viewOf(s.grads[i]), shape, 'float32'));
        grads.set(
          name,
          tf.tidy(() => tf.mul(parts.length === 2 ? tf.add(parts[0], parts[1]) : tf.addN(parts), 1 / n)),
        );
        tf.dispose(parts);
      });
    }
    return {
      grads,
      n,
      lossSum: results.reduce((a, r) => a + r.lossSum, 0),
      correct: results.reduce((a, r) => a + r.correct, 0),
      workerMs: results.map((r) => r.ms),
    };
  }

  async publish(): Promise<void> {
    const index = new Map(this.weights.map((p, i) => [p.name, i]));
    for (const name of this.o.trainable) viewOf(this.weights[index.get(name)!]).set((await this.o.variables.get(name)!.data()) as Float32Array);
    this.version++;
  }

  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pending?.reject(new TrainWorkerError('the training engine was disposed during a step'));
    this.pending = null;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
