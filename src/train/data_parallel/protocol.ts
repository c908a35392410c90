/**
 * Messages between the data-parallel engine (main thread) and its training workers. Tensors never
 * travel in messages: weights and gradients live in SharedArrayBuffers laid out once at start-up.
 */
import { SharedParam } from '../../parallel/shared_weights';
import { StepRef } from './task';

/** workerData of a training worker. */
export interface TrainWorkerInit {
  index: number;
  workers: number;
  backend: string;
  /** Compiled module exporting createReplicaTask(options, onSkip) (a path: the task may live above train). */
  taskModule: string;
  taskOptions: unknown;
  /** Every variable of the replica, in shared memory (written by the main thread after each step). */
  weights: SharedParam[];
  /** Trainable parameter names, in gradient-buffer order. */
  trainable: string[];
  /** This worker's gradient region: one float32 view per trainable parameter, same order. */
  grads: SharedParam[];
}

export type ToTrainWorker = {
  type: 'step';
  /** Weights version: the worker reloads the trainable weights when it differs from the last one seen. */
  version: number;
  ref: StepRef;
  /** The step after this one, prefetched while the main thread applies this one (null: none). */
  next: StepRef | null;
};

export type FromTrainWorker =
  | { type: 'ready' }
  | { type: 'init-error'; name: string; message: string }
  /** The share's gradient (sum over micro-batches of count x mean gradient) is in the worker's region. */
  | { type: 'done'; step: number; n: number; lossSum: number; correct: number; /** Time computing (weights load to gradients written). */ ms: number }
  | { type: 'error'; step: number; name: string; message: string }
  | { type: 'skip'; file: string; reason: string };
