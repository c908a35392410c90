/**
 * Messages between the data-parallel engine (main thread) and its training workers. Tensors never
 * travel in messages: weights and gradients live in SharedArrayBuffers laid out once at start-up.
 */
import { OutOfMemoryError } from '../../errors';
import { StepRef } from './task';
import { UpdateLayout, UpdateOrder } from './update';

/** workerData of a training worker. */
export interface TrainWorkerInit {
  index: number;
  workers: number;
  backend: string;
  /** Compiled module exporting createReplicaTask(options, onSkip) (a path: the task may live above train). */
  taskModule: string;
  taskOptions: unknown;
  /** Trainable parameter names, in gradient-buffer order. */
  trainable: string[];
  /** The run's shared weights, gradient regions (this worker's: grads[index]), moments and EMA shadow. */
  layout: UpdateLayout;
}

export type ToTrainWorker =
  | {
      type: 'step';
      /** Weights version: the worker reloads the trainable weights when it differs from the last one seen. */
      version: number;
      ref: StepRef;
      /** The step after this one, prefetched while the update runs (null: none). */
      next: StepRef | null;
    }
  /** Every worker has written its gradient: apply the update to your slice (update.ts). */
  | { type: 'update'; step: number; order: UpdateOrder };

export type FromTrainWorker =
  | { type: 'ready' }
  | { type: 'init-error'; name: string; message: string }
  /** The mean gradient over the share's n samples is in the worker's region. */
  | {
      type: 'done';
      step: number;
      n: number;
      lossSum: number;
      correct: number;
      /** Trainable indices with no gradient from this share. */
      missing: number[];
      /** Time computing (weights load to gradients written), and of it loading the weights and writing the gradients. */
      ms: number;
      reloadMs: number;
      writeMs: number;
    }
  | { type: 'updated'; step: number }
  /** `oom`: the detail of an OutOfMemoryError, which the engine rethrows as one (not wrapped). */
  | { type: 'error'; step: number; name: string; message: string; oom?: OutOfMemoryError['detail'] }
  | { type: 'skip'; file: string; reason: string };
