/**
 * Where batches run: in this thread (one model; on wasm its ops use the threaded build) or on an
 * InferencePool (replicas in worker threads, one core each: the higher throughput on many images).
 * Both take normalised NHWC float32 batches and return row-major [N, width] outputs.
 */
import * as os from 'os';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../errors';
import { ConvNeXt } from '../model/convnext';
import { InferencePool } from '../parallel/pool';
import { RunKind } from '../parallel/protocol';

export interface BatchRunner {
  /** Batches worth having in flight at once (pool workers; 1 in this thread). */
  readonly concurrency: number;
  /** logits [N, classes], probs (softmax of logits) or embed (pooled pre-logits [N, C]). */
  run(kind: RunKind, data: Float32Array, shape: [number, number, number, number]): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** Runs batches on `model` in this thread. */
export function localRunner(model: ConvNeXt): BatchRunner {
  return {
    concurrency: 1,
    async run(kind, data, shape) {
      const y = tf.tidy(() => {
        const x = tf.tensor4d(data, shape);
        if (kind === 'embed') return model.embed(x);
        const logits = model.forward(x);
        return kind === 'probs' ? tf.softmax(logits) : logits;
      });
      // Read outside tidy (tidy would walk a returned typed array element by element); async for webgpu.
      try {
        return (await y.data()) as Float32Array;
      } finally {
        y.dispose();
      }
    },
    async dispose() {},
  };
}

/** Runs batches on `workers` replicas of `model` (its weights are shared, not copied per worker). */
export async function poolRunner(model: ConvNeXt, workers: number, backend?: string): Promise<BatchRunner> {
  const pool = await InferencePool.create(model, { workers, backend: backend ?? tf.getBackend() });
  return {
    concurrency: pool.size,
    run: (kind, data, shape) => pool.run(kind, data, shape, { transfer: false }),
    dispose: () => pool.dispose(),
  };
}

/**
 * Workers for a job of `images` images in batches of `batchSize`: 'auto' takes every core when there
 * is more than one batch (a pool's start-up, ~1 s, is not worth it for one), else this thread;
 * on webgpu always this thread.
 */
export function resolveWorkers(workers: number | 'auto' | undefined, images: number, batchSize: number): number {
  if (workers === undefined || workers === 'auto') {
    // One GPU serves every batch: replicas in worker threads would each open a device of their own.
    if (tf.getBackend() === 'webgpu') return 1;
    return images > batchSize ? Math.min(os.availableParallelism(), Math.ceil(images / batchSize)) : 1;
  }
  if (!(Number.isInteger(workers) && workers > 0)) throw new ConfigError(`workers must be a positive integer or 'auto', got ${workers}`);
  return workers;
}

/** A runner with `workers` workers: this thread for 1, else a pool. */
export function createRunner(model: ConvNeXt, workers: number): Promise<BatchRunner> {
  return workers > 1 ? poolRunner(model, workers) : Promise.resolve(localRunner(model));
}

/**
 * Feeds batches to a runner keeping up to runner.concurrency of them in flight, and hands the
 * results over in batch order. `next()` yields the next batch (undefined when done); it is called
 * while earlier batches compute, so decoding overlaps the forward passes.
 */
export async function pipeline<B, R>(
  concurrency: number,
  next: () => Promise<B | undefined>,
  run: (batch: B) => Promise<R>,
  onResult: (batch: B, result: R) => void | Promise<void>,
): Promise<void> {
  const inFlight: { batch: B; result: Promise<R> }[] = [];
  let done = false;
  try {
    for (;;) {
      while (!done && inFlight.length < concurrency) {
        const batch = await next();
        if (batch === undefined) done = true;
        else inFlight.push({ batch, result: run(batch) });
      }
      const head = inFlight.shift();
      if (!head) return;
      await onResult(head.batch, await head.result);
    }
  } finally {
    // Do not leave rejections of batches nobody will await unhandled.
    for (const f of inFlight) f.result.catch(() => {});
  }
}
