/**
 * Data-parallel training steps (issue 11 §1), for the classifier trainer and FCMAE pretraining alike.
 * The caller keeps the schedule, checkpoints and evaluation; the engine computes each step (its
 * micro-batches) and applies its AdamW update and EMA:
 *
 *   workers 1   in this thread, on the master model itself (no copy, no thread): AdamW.apply on
 *               the step's mean gradient, then ModelEma.update.
 *   workers N   N worker threads, one replica each (wasm, one thread). Each decodes and augments
 *               its share of every micro-batch itself (task.ts shareRange), runs forward and
 *               backward, and writes its mean gradient (over the step's micro-batches) into its
 *               region of shared memory, then prefetches its share of the next step. The update
 *               runs in the workers too (update.ts): each sums the regions over its own slice of the
 *               weights, applies AdamW and the EMA there, in shared memory. The main thread only
 *               sends the update's constants (AdamW.coefficients), so its serial part of a step is
 *               two messages. Every replica loads the new trainable weights before its next step.
 *               The weights, moments and shadow live in shared memory during the run: sync()
 *               copies them into the master variables, the optimizer and the EMA, for evaluation,
 *               checkpoints and the final model. Messages carry figures, never tensors.
 *
 *   const engine = await createEngine({ workers: 'auto', variables, trainable, optimizer, ema, taskModule, taskOptions, inProcess });
 *   const r = await engine.step(ref, next);   // r.n, r.lossSum, r.correct
 *   await engine.update(lr);                  // AdamW (when r.n > 0), then the EMA
 *   await engine.sync();                      // before reading the master weights
 *   await engine.dispose();
 *
 * A worker that throws or dies rejects the step with TrainWorkerError naming it (a replica out of
 * its wasm heap: the OutOfMemoryError itself, which names the options that fix it); the caller stops
 * (its last checkpoint on disk is whole: they are written atomically).
 */
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, OutOfMemoryError, TrainWorkerError } from '../../errors';
import { SharedParam, viewOf } from '../../parallel/shared_weights';
import { builtOrDisposedAsync } from '../../util/dispose';
import { AdamW } from '../adamw';
import { ModelEma } from '../ema';
import { FromTrainWorker, ToTrainWorker, TrainWorkerInit } from './protocol';
import { MicroRef, ReplicaTask, ResultMean, StepRef, microRefs } from './task';
import { UpdateLayout, UpdateOrder, createUpdateLayout } from './update';

/** The worker entry, compiled beside this file. */
export const TRAIN_WORKER_SCRIPT = path.join(__dirname, 'worker.js');

/** One step's figures (its gradient stays in the engine until update()). */
export interface StepOutcome {
  /** Samples used (0: every image of the step failed to decode). */
  n: number;
  lossSum: number;
  correct: number;
  /** Each worker's time computing this step (weights loaded to gradients written); absent in this thread. */
  workerMs?: number[];
  /** Of workerMs: loading the new weights, and writing the gradient to shared memory. */
  workerReloadMs?: number[];
  workerWriteMs?: number[];
}

export interface DataParallelEngine {
  /** Replicas computing (1: in this thread). */
  readonly workers: number;
  /** Forward and backward of a step's micro-batches; `next` is decoded ahead. */
  step(ref: StepRef, next: StepRef | null): Promise<StepOutcome>;
  /**
   * After step(): one AdamW update at learning rate `lr` on the step's mean gradient (none when it
   * had no sample), then the EMA. The replicas see the new weights from the next step on.
   */
  update(lr: number): Promise<void>;
  /** Makes the master variables, the optimizer's moments and the EMA shadow current (no-op in this thread). */
  sync(): Promise<void>;
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
  /** The run's optimizer (over `trainable`) and EMA (over every variable), which the engine steps. */
  optimizer: AdamW;
  ema?: ModelEma | null;
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
  if (n === 1) return new InProcessEngine(o.inProcess(), o);
  return WorkerEngine.start(n, o);
}

/** workers 1: the task runs on the master model; the next micro-batch is decoded ahead. */
class InProcessEngine implements DataParallelEngine {
  readonly workers = 1;
  private ahead: { key: string; p: Promise<unknown> } | null = null;
  /** The last step's mean gradient, until update(). */
  private grads = new Map<string, tf.Tensor>();

  constructor(
    private readonly task: ReplicaTask,
    private readonly o: EngineOptions,
  ) {}

  private load(m: MicroRef): Promise<unknown> {
    const key = `${m.epoch}/${m.batch}`;
    const p = this.ahead?.key === key ? this.ahead.p : this.task.load(m, [0, this.o.batchSize]);
    this.ahead = null;
    return p;
  }

  private dropGrads(): void {
    tf.dispose([...this.grads.values()]);
    this.grads.clear();
  }

  async step(ref: StepRef, next: StepRef | null): Promise<StepOutcome> {
    this.dropGrads();
    const micros = microRefs(ref);
    const mean = new ResultMean();
    try {
      for (let i = 0; i < micros.length; i++) {
        const loaded = await this.load(micros[i]);
        const after = i + 1 < micros.length ? micros[i + 1] : next ? microRefs(next)[0] : null;
        if (after) {
          const p = this.task.load(after, [0, this.o.batchSize]);
          p.catch(() => undefined); // surfaced when awaited
          this.ahead = { key: `${after.epoch}/${after.batch}`, p };
        }
        mean.add(await this.task.compute(loaded, micros[i]));
      }
    } catch (e) {
      mean.dispose();
      throw e;
    }
    const r = mean.result();
    this.grads = r.grads;
    return { n: r.n, lossSum: r.lossSum, correct: r.correct };
  }

  async update(lr: number): Promise<void> {
    try {
      if (this.grads.size > 0) this.o.optimizer.apply(this.grads, lr);
    } finally {
      this.dropGrads();
    }
    this.o.ema?.update(this.o.variables);
  }

  async sync(): Promise<void> {
    // The task trains the master variables themselves.
  }

  async dispose(): Promise<void> {
    this.ahead = null;
    this.dropGrads();
  }
}

interface Slot {
  index: number;
  worker: Worker;
  alive: boolean;
  lastError?: string;
}

type Done = Extract<FromTrainWorker, { type: 'done' }>;

/** A round every live worker answers: a step ('done') or an update ('updated'). */
interface Pending {
  kind: 'done' | 'updated';
  step: number;
  results: (Done | true | null)[];
  resolve: () => void;
  reject: (e: Error) => void;
}

class WorkerEngine implements DataParallelEngine {
  private readonly slots: Slot[] = [];
  private pending: Pending | null = null;
  private failure: TrainWorkerError | OutOfMemoryError | null = null;
  private version = 0;
  private closed = false;
  /** The last step's results, until update(). */
  private last: { step: number; results: Done[] } | null = null;

  private constructor(
    readonly workers: number,
    private readonly o: EngineOptions,
    private readonly layout: UpdateLayout,
  ) {}

  static async start(n: number, o: EngineOptions): Promise<WorkerEngine> {
    const names = [...o.variables.keys()];
    const layout = createUpdateLayout(
      names.map((name) => ({ name, shape: o.variables.get(name)!.shape })),
      o.trainable.map((k) => names.indexOf(k)),
      n,
      !!o.ema,
    );
    const { weights, m, v } = layout;
    // The run's state so far (a resume restored it into the variables, the optimizer and the EMA).
    const state = o.optimizer.state();
    await fill(weights, o.variables);
    await fill(m, state.m);
    await fill(v, state.v);
    if (layout.ema && o.ema) await fill(layout.ema, o.ema.shadow);
    const engine = new WorkerEngine(n, o, layout);
    return builtOrDisposedAsync(engine, () => Promise.all(Array.from({ length: n }, (_, i) => engine.spawn(i))));
  }

  private spawn(index: number): Promise<void> {
    const o = this.o;
    const init: TrainWorkerInit = {
      index,
      workers: this.workers,
      backend: o.backend ?? tf.getBackend(),
      taskModule: o.taskModule,
      taskOptions: o.taskOptions,
      trainable: o.trainable,
      layout: this.layout,
    };
    const worker = new Worker(TRAIN_WORKER_SCRIPT, { workerData: init });
    const slot: Slot = { index, worker, alive: true };
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
        } else if (msg.type === 'done' || msg.type === 'updated') {
          const p = this.pending;
          if (!p || p.kind !== msg.type || p.step !== msg.step) return;
          p.results[index] = msg.type === 'done' ? msg : true;
          if (p.results.every((r) => r !== null)) p.resolve();
        } else if (msg.type === 'error') {
          // Out of memory is the run's configuration, not the worker's fault: the caller gets the error itself.
          this.fail(
            msg.oom
              ? new OutOfMemoryError(msg.oom)
              : new TrainWorkerError(`training worker ${index} failed at step ${msg.step + 1}: ${msg.name}: ${msg.message}`, index, msg.name),
          );
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

  private fail(e: TrainWorkerError | OutOfMemoryError): void {
    if (!this.failure) this.failure = e;
    const p = this.pending;
    this.pending = null;
    p?.reject(this.failure);
  }

  /** Sends `msg` to every worker and resolves with their answers of `kind` for `step`. */
  private async round(kind: Pending['kind'], step: number, msg: ToTrainWorker): Promise<Pending['results']> {
    if (this.failure) throw this.failure;
    if (this.closed) throw new TrainWorkerError('the training engine has been disposed');
    const results: Pending['results'] = this.slots.map(() => null);
    const done = new Promise<void>((resolve, reject) => {
      this.pending = { kind, step, results, resolve, reject };
    });
    for (const s of this.slots) s.worker.postMessage(msg);
    await done;
    this.pending = null;
    return results;
  }

  async step(ref: StepRef, next: StepRef | null): Promise<StepOutcome> {
    this.last = null;
    const results = (await this.round('done', ref.step, { type: 'step', version: this.version, ref, next })) as Done[];
    this.last = { step: ref.step, results };
    return {
      n: results.reduce((a, r) => a + r.n, 0),
      lossSum: results.reduce((a, r) => a + r.lossSum, 0),
      correct: results.reduce((a, r) => a + r.correct, 0),
      workerMs: results.map((r) => r.ms),
      workerReloadMs: results.map((r) => r.reloadMs),
      workerWriteMs: results.map((r) => r.writeMs),
    };
  }

  async update(lr: number): Promise<void> {
    if (!this.last) throw new TrainWorkerError('update() without a step() before it');
    const { step, results } = this.last;
    this.last = null;
    const n = results.reduce((a, r) => a + r.n, 0);
    const ema = this.o.ema ?? null;
    if (n === 0 && !ema) return;
    let coefficients: UpdateOrder['coefficients'] = null;
    if (n > 0) {
      const t = this.o.optimizer.advance();
      coefficients = this.o.trainable.map((name) => this.o.optimizer.coefficients(name, lr, t));
    }
    const order: UpdateOrder = {
      coefficients,
      n: Math.max(n, 1),
      parts: results.map((r) => ({ scale: r.n, missing: r.missing })),
      emaDecay: ema?.decay ?? null,
    };
    await this.round('updated', step, { type: 'update', step, order });
    if (n > 0) this.version++;
  }

  async sync(): Promise<void> {
    const { layout, o } = this;
    assignAll(o.variables, o.trainable, (_, j) => layout.weights[layout.trainable[j]]);
    const state = o.optimizer.state();
    assignAll(state.m, o.trainable, (_, j) => layout.m[j]);
    assignAll(state.v, o.trainable, (_, j) => layout.v[j]);
    if (layout.ema && o.ema) assignAll(o.ema.shadow, [...o.variables.keys()], (_, i) => layout.ema![i]);
  }

  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pending?.reject(new TrainWorkerError('the training engine was disposed during a step'));
    this.pending = null;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

/** Copies variables into their shared views (same order). */
async function fill(views: SharedParam[], from: Map<string, tf.Variable>): Promise<void> {
  for (const p of views) viewOf(p).set((await from.get(p.name)!.data()) as Float32Array);
}

/** Assigns shared views to variables: names[i] gets viewAt(names[i], i). */
function assignAll(to: Map<string, tf.Variable>, names: string[], viewAt: (name: string, i: number) => SharedParam): void {
  names.forEach((name, i) => {
    const p = viewAt(name, i);
    const t = tf.tensor(viewOf(p), p.shape, 'float32');
    to.get(name)!.assign(t);
    t.dispose();
  });
}
