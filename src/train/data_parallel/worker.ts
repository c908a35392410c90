/**
 * Entry point of a data-parallel training worker (engine.ts; run from
 * dist/src/train/data_parallel/worker.js). It initialises its own backend (one wasm thread: the
 * workers take the cores), builds its replica with the task module named in workerData, loads the
 * shared weights, and answers steps: reload the trainable weights when their version moved, compute
 * its share of every micro-batch, write the mean gradient over its share's samples into its shared
 * region (ResultMean, as one thread does), report the figures, then decode its share of the next
 * step ahead. An update applies AdamW and the EMA to
 * this worker's slice of the shared weights (update.ts).
 */
import { parentPort, workerData } from 'worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../backend';
import { updateKernels } from '../../backend/wasm_simd/shared_update';
import { settings } from '../../env';
import { OutOfMemoryError } from '../../errors';
import { viewOf } from '../../parallel/shared_weights';
import { FromTrainWorker, ToTrainWorker, TrainWorkerInit } from './protocol';
import { MicroRef, ReplicaTask, ResultMean, SkipHook, StepRef, microRefs, shareRange } from './task';
import { updateSlice } from './update';

type TaskModule = { createReplicaTask: (options: unknown, onSkip: SkipHook) => ReplicaTask };

const init = workerData as TrainWorkerInit;

function post(msg: FromTrainWorker): void {
  parentPort!.postMessage(msg);
}

function errorFields(e: unknown): { name: string; message: string } {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
}

const byName = new Map(init.layout.weights.map((p) => [p.name, p]));

function loadWeights(task: ReplicaTask, names: Iterable<string>): void {
  for (const name of names) {
    const p = byName.get(name)!;
    const t = tf.tensor(viewOf(p), p.shape, 'float32');
    task.variables.get(name)!.assign(t);
    t.dispose();
  }
}

async function main(): Promise<void> {
  let task: ReplicaTask;
  try {
    await initBackend({ backend: init.backend, threads: 1 });
    const mod = require(init.taskModule) as TaskModule;
    task = mod.createReplicaTask(init.taskOptions, (file, reason) => post({ type: 'skip', file, reason }));
    loadWeights(task, task.variables.keys());
  } catch (e) {
    post({ type: 'init-error', ...errorFields(e) });
    return;
  }
  const fault = settings.testWorkerFault();
  let version = 0;
  let batchSize = 0;
  // Shares decoded ahead, by epoch/batch.
  const ahead = new Map<string, Promise<unknown>>();
  const key = (m: MicroRef) => `${m.epoch}/${m.batch}`;
  const range = (): [number, number] => shareRange(batchSize, init.index, init.workers);
  const load = (m: MicroRef): Promise<unknown> => {
    const p = ahead.get(key(m)) ?? task.load(m, range());
    ahead.delete(key(m));
    return p;
  };
  const prefetch = (next: StepRef | null): void => {
    if (!next) return;
    // One after another, in step order: the first micro-batch is ready first.
    let chain: Promise<unknown> = Promise.resolve();
    for (const m of microRefs(next)) {
      const p = chain.then(() => task.load(m, range()));
      p.catch(() => undefined); // surfaced when the step awaits it
      ahead.set(key(m), p);
      chain = p.catch(() => undefined);
    }
  };
  batchSize = (init.taskOptions as { batchSize: number }).batchSize;

  const grads = init.layout.grads[init.index];
  const kernels = init.layout.memory ? updateKernels(init.layout.memory) : null;
  /** Computes a step's share and writes its gradient; returns the 'done' figures. */
  const compute = async (msg: Extract<ToTrainWorker, { type: 'step' }>): Promise<FromTrainWorker> => {
    const { ref } = msg;
    const t0 = performance.now();
    if (msg.version !== version) {
      loadWeights(task, init.trainable);
      version = msg.version;
    }
    const t1 = performance.now();
    const mean = new ResultMean();
    try {
      for (const m of microRefs(ref)) mean.add(await task.compute(await load(m), m));
    } catch (e) {
      mean.dispose();
      throw e;
    }
    const t2 = performance.now();
    const r = mean.result();
    try {
      const missing: number[] = [];
      for (let j = 0; j < init.trainable.length; j++) {
        const g = r.grads.get(init.trainable[j]);
        if (g) viewOf(grads[j]).set((await g.data()) as Float32Array);
        else missing.push(j);
      }
      const t3 = performance.now();
      return { type: 'done', step: ref.step, n: r.n, lossSum: r.lossSum, correct: r.correct, missing, ms: t3 - t0, reloadMs: t1 - t0, writeMs: t3 - t2 };
    } finally {
      tf.dispose([...r.grads.values()]);
    }
  };

  let queue = Promise.resolve();
  parentPort!.on('message', (msg: ToTrainWorker) => {
    queue = queue.then(async () => {
      const step = msg.type === 'step' ? msg.ref.step : msg.step;
      try {
        if (msg.type === 'update') {
          updateSlice(init.layout, msg.order, init.index, init.workers, kernels);
          post({ type: 'updated', step });
          return;
        }
        if (fault && fault.worker === init.index && fault.step === step + 1) {
          if (fault.how === 'exit') process.exit(3);
          const cause = `test fault injected at step ${step + 1} (CONVNEXT_TEST_WORKER_FAULT)`;
          if (fault.how === 'oom') {
            const fixes = { chunkSize: 'chunkSize', batchSize: 'batchSize', accumSteps: 'accumSteps', workers: 'workers' };
            throw new OutOfMemoryError({ chunk: 2, share: 2, imageSize: 0, fixes, cause });
          }
          throw new Error(cause);
        }
        post(await compute(msg));
        prefetch(msg.next);
      } catch (e) {
        post({ type: 'error', step, ...errorFields(e), ...(e instanceof OutOfMemoryError ? { oom: e.detail } : {}) });
      }
    });
  });
  post({ type: 'ready' });
}

void main();
