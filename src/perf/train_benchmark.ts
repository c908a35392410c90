/**
 * Training speed of one configuration on this machine: full steps (forward, backward, AdamW) of
 * a randomly initialised model on random data, the step `convnext train` takes without its data
 * loading, and the step ../shared/peers/peer-train-bench.py times in PyTorch (same recipe: AdamW
 * lr 1e-3 wd 0.05, label smoothing 0.1, 1000 classes, no drop path, no data loading).
 *
 *   const r = await runTrainBenchmark({ arch: 'convnext_atto', imageSize: 64, batch: 32 });
 *   r.images_per_s;   // batch / median step time
 *
 * The step is `createTrainStep` (also used by bench/train_profile.ts to profile it per kernel); with
 * workers > 1 it is the data-parallel step `convnext train` takes (src/train/data_parallel): the
 * global batch split over worker replicas, gradients combined in shared memory and the AdamW step
 * applied by the workers, each to its slice of the shared weights, with seeded synthetic data made
 * once per worker.
 * A batch larger than the chunk size (chunkSize, default 'auto': what fits the wasm heap,
 * src/train/data_parallel/footprint.ts) takes the task's step in one thread too, computed in chunks.
 * Peak RSS is the whole process's (worker threads included).
 * The library never prints; progress goes through onProgress.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend';
import { ConfigError } from '../errors';
import { countMacs, resolveConfig } from '../model/configs';
import { ConvNeXt } from '../model/convnext';
import { createModel } from '../factory/create';
import { archOf } from '../factory/names';
import { AdamW } from '../train/adamw';
import { paramGroups } from '../train/layer_decay';
import { smoothOneHot, softCrossEntropy } from '../train/loss';
import { BenchProgress, BenchSetup, checkPositiveInt, machineInfo, median, round } from './benchmark';
import { IMAGENET_MEAN, IMAGENET_STD } from '../model/preprocessing';
import { CLASSIFY_TASK_MODULE, ClassifyTask, ClassifyTaskOptions } from '../train/data_parallel/classify_task';
import { DataParallelEngine, createEngine, resolveTrainWorkers } from '../train/data_parallel/engine';
import { StepRef } from '../train/data_parallel/task';
import { CHUNK_SIZE_RULE, ChunkSize, chunkLimit, isChunkSize, withHeapError } from '../train/data_parallel/chunks';
import { autoChunkSize } from '../train/data_parallel/footprint';

/** runTrainBenchmark's option names, for OutOfMemoryError. */
const BENCH_FIXES = { chunkSize: 'chunkSize', batchSize: 'batch', workers: 'workers' };

/** The architecture a name denotes (the name rule); the weights are random. */
function trainArch(name: string): string {
  const arch = archOf(name);
  if (!arch) throw new ConfigError(`bench --train: '${name}' is a path or URL; give an architecture (e.g. convnext_atto)`);
  return arch;
}

/** Where a step is: lets a profiler attribute each kernel call to its phase. */
export type StepPhase = 'forward' | 'backward' | 'optimizer';

export interface TrainStepOptions {
  arch: string;
  imageSize: number;
  batch: number;
  /** Classes of the head (default 1000, as the peer script). */
  numClasses?: number;
  /** Drop path rate (default 0, as the peer script). */
  dropPathRate?: number;
  lr?: number;
  /** Called when the step enters a phase (profiling). */
  onPhase?: (p: StepPhase) => void;
}

export interface TrainStep {
  model: ConvNeXt;
  /** One full step (synchronous: the loss is read back at the end); returns the loss. */
  run(): number;
  dispose(): void;
}

/**
 * A training step on fixed random data: forward in training mode, softmax cross-entropy with
 * label smoothing 0.1, gradients of every parameter (tf.variableGrads), one AdamW update.
 */
export function createTrainStep(o: TrainStepOptions): TrainStep {
  const numClasses = o.numClasses ?? 1000;
  const model = createModel(trainArch(o.arch), { init: 'random', numClasses, dropPathRate: o.dropPathRate ?? 0 });
  const params = model.getWeights();
  const opt = new AdamW(params, paramGroups(model.parameterInfo()), { weightDecay: 0.05 });
  const byTfName = new Map([...params].map(([k, v]) => [v.name, k]));
  const { inChannels } = model.config;
  const x = tf.randomNormal([o.batch, o.imageSize, o.imageSize, inChannels], 0, 1, 'float32', 1) as tf.Tensor4D;
  const labels = Array.from({ length: o.batch }, (_, i) => (i * 7919) % numClasses);
  const targets = smoothOneHot(labels, numClasses, 0.1);
  const lr = o.lr ?? 1e-3;
  let step = 0;
  return {
    model,
    run: () => {
      o.onPhase?.('forward');
      const { value, grads } = tf.variableGrads(() => {
        const loss = softCrossEntropy(model.forward(x, { training: true, seed: step }), targets);
        o.onPhase?.('backward');
        return loss;
      }, [...params.values()]);
      o.onPhase?.('optimizer');
      opt.apply(new Map(Object.entries(grads).map(([k, g]) => [byTfName.get(k) ?? k, g])), lr);
      tf.dispose(Object.values(grads));
      const loss = value.dataSync()[0];
      value.dispose();
      step++;
      return loss;
    },
    dispose: () => {
      tf.dispose([x, targets]);
      opt.dispose();
      model.dispose();
    },
  };
}

interface AsyncStep {
  model: ConvNeXt;
  /** The loss, and with workers the slowest worker's compute time of the step. */
  run(): Promise<{ loss: number; workerMs?: number; updateMs?: number; reloadMs?: number; writeMs?: number }>;
  dispose(): Promise<void>;
}

/** createTrainStep as an AsyncStep; a wasm heap abort becomes OutOfMemoryError (chunks.ts). */
function asyncStep(s: TrainStep, sizes: { chunk: number; share: number; imageSize: number }): AsyncStep {
  return { model: s.model, run: () => withHeapError(sizes, BENCH_FIXES, async () => ({ loss: s.run() })), dispose: async () => s.dispose() };
}

/**
 * The same step data-parallel over `workers` replicas (the engine `convnext train` uses): synthetic
 * seeded data, label smoothing 0.1, no drop path, AdamW applied by the engine (in the workers).
 */
async function createParallelStep(o: TrainStepOptions, workers: number, chunkSize: ChunkSize | undefined): Promise<AsyncStep> {
  const numClasses = o.numClasses ?? 1000;
  const model = createModel(trainArch(o.arch), { init: 'random', numClasses, dropPathRate: 0 });
  const params = model.getWeights();
  const opt = new AdamW(params, paramGroups(model.parameterInfo()), { weightDecay: 0.05 });
  const task: ClassifyTaskOptions = {
    config: { ...model.config, depths: [...model.config.depths], dims: [...model.config.dims] },
    samples: null,
    batchSize: o.batch,
    seed: 1,
    transform: { size: o.imageSize },
    mean: [...IMAGENET_MEAN],
    std: [...IMAGENET_STD],
    labelSmoothing: 0.1,
    mixup: 0,
    cutmix: 0,
    trainable: [...params.keys()],
    chunkSize,
    fixes: BENCH_FIXES,
  };
  let engine: DataParallelEngine;
  try {
    engine = await createEngine({
      workers,
      batchSize: o.batch,
      variables: params,
      trainable: task.trainable,
      taskModule: CLASSIFY_TASK_MODULE,
      taskOptions: task,
      optimizer: opt,
      inProcess: () => new ClassifyTask(model, task, () => undefined),
    });
  } catch (e) {
    opt.dispose();
    model.dispose();
    throw e;
  }
  const lr = o.lr ?? 1e-3;
  let step = 0;
  // The one synthetic batch, every step (as createTrainStep's fixed data).
  const ref = (s: number): StepRef => ({ epoch: 0, step: s, batches: [0] });
  return {
    model,
    run: async () => {
      const out = await engine.step(ref(step), ref(step + 1));
      const t = performance.now();
      await engine.update(lr);
      const updateMs = performance.now() - t;
      step++;
      const slowest = (out.workerMs ?? []).indexOf(Math.max(...(out.workerMs ?? [])));
      return {
        loss: out.lossSum / out.n,
        workerMs: out.workerMs?.[slowest] ?? NaN,
        updateMs,
        reloadMs: out.workerReloadMs?.[slowest],
        writeMs: out.workerWriteMs?.[slowest],
      };
    },
    dispose: async () => {
      await engine.dispose();
      opt.dispose();
      model.dispose();
    },
  };
}

export interface TrainBenchOptions {
  arch: string;
  /** Square input size (default 224). */
  imageSize?: number;
  /** Images per step. */
  batch: number;
  /** Data-parallel workers (1: this thread, createTrainStep); the batch is the global batch. */
  workers?: number;
  /** Samples a replica computes at once (default 'auto'; the training option of the same name). */
  chunkSize?: ChunkSize;
  backend?: string;
  threads?: number | 'auto';
  /** Timed steps (default 5). */
  reps?: number;
  /** Untimed steps first (default 2: the first steps allocate and compile). */
  warmup?: number;
  onProgress?: (e: BenchProgress) => void;
}

/** One training benchmark's figures (snake_case: the JSON `convnext bench --train --json` prints). */
export interface TrainBenchResult extends BenchSetup {
  mode: 'train';
  /** Whether our SIMD kernels served (wasm), null elsewhere. */
  simd: boolean | null;
  /** batch / median step time. */
  images_per_s: number;
  /** batch / fastest step time. */
  images_per_s_best: number;
  ms_per_step: number;
  ms_per_step_best: number;
  step_ms: number[];
  /**
   * workers > 1: the slowest worker's compute time per step (median), and the rest of the step
   * (the update, messages, waiting for the main thread; median of step - slowest worker).
   */
  worker_ms: number | null;
  overhead_ms: number | null;
  /** workers > 1: the update round (the workers' AdamW and EMA on their slices, and its messages), median ms. */
  update_ms: number | null;
  /** workers > 1: of worker_ms (the slowest worker's), loading the new weights and writing the gradient, median ms. */
  reload_ms: number | null;
  write_ms: number | null;
  /** Samples a replica computed at once when its share was chunked, else null. */
  chunk_size: number | null;
  /** Process CPU time over wall time during the timed steps. */
  cpu_util: number;
  final_loss: number;
  params: number;
  /** Forward multiply-accumulates per image (a step is ~3x that). */
  gmacs_per_img: number;
  peak_rss_mb: number;
  /** This thread's wasm heap after the steps (it only grows: the peak), wasm only; the workers' are not counted. */
  wasm_heap_mb: number | null;
  num_tensors: number;
  machine: ReturnType<typeof machineInfo>;
}

/** Times full training steps; see the file header. */
export async function runTrainBenchmark(o: TrainBenchOptions): Promise<TrainBenchResult> {
  const size = o.imageSize ?? 224;
  const reps = o.reps ?? 5;
  const warmup = o.warmup ?? 2;
  const workers = o.workers ?? 1;
  checkPositiveInt('batch', o.batch);
  checkPositiveInt('imageSize', size);
  checkPositiveInt('reps', reps);
  checkPositiveInt('workers', workers);
  if (!(Number.isInteger(warmup) && warmup >= 0)) throw new ConfigError(`warmup must be an integer >= 0, got ${warmup}`);
  if (size < 32) throw new ConfigError(`imageSize must be at least 32, got ${size}`);
  if (workers > 1) resolveTrainWorkers(workers, o.batch); // whole pairs per worker
  if (o.chunkSize !== undefined && !isChunkSize(o.chunkSize)) throw new ConfigError(`chunkSize must be ${CHUNK_SIZE_RULE}, got ${JSON.stringify(o.chunkSize)}`);
  const info = await initBackend({ backend: o.backend, threads: o.threads });
  const share = Math.ceil(o.batch / 2 / workers) * 2;
  const limit = chunkLimit(o.chunkSize, info.backend, () => autoChunkSize(resolveConfig(trainArch(o.arch)), size));
  const chunked = limit < share;
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  sampler.unref();
  const step =
    workers > 1 || chunked
      ? await createParallelStep({ arch: o.arch, imageSize: size, batch: o.batch }, workers, o.chunkSize)
      : asyncStep(createTrainStep({ arch: o.arch, imageSize: size, batch: o.batch }), { chunk: o.batch, share: o.batch, imageSize: size });
  const { model } = step;
  const params = model.numParams();
  const gmacs = countMacs(model.config, size, size) / 1e9;
  const arch = trainArch(o.arch);
  const times: number[] = [];
  const workerTimes: number[] = [];
  const updateTimes: number[] = [];
  const reloadTimes: number[] = [];
  const writeTimes: number[] = [];
  let loss = NaN;
  let cpuUtil = 0;
  let heap: number | null = null;
  try {
    for (let i = 0; i < warmup; i++) {
      const t = performance.now();
      loss = (await step.run()).loss;
      o.onProgress?.({ phase: 'warmup', index: i + 1, total: warmup, ms: performance.now() - t });
    }
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    for (let i = 0; i < reps; i++) {
      const t = performance.now();
      const r = await step.run();
      loss = r.loss;
      times.push(performance.now() - t);
      if (r.workerMs !== undefined) workerTimes.push(r.workerMs);
      if (r.updateMs !== undefined) updateTimes.push(r.updateMs);
      if (r.reloadMs !== undefined) reloadTimes.push(r.reloadMs);
      if (r.writeMs !== undefined) writeTimes.push(r.writeMs);
      o.onProgress?.({ phase: 'rep', index: i + 1, total: reps, ms: times[i] });
    }
    const cpu = process.cpuUsage(cpu0);
    cpuUtil = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0);
    heap = (tf.backend() as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.buffer.byteLength ?? null;
  } finally {
    await step.dispose();
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
  const med = median(times);
  const best = Math.min(...times);
  return {
    mode: 'train',
    arch,
    backend: info.backend,
    simd: info.backend === 'wasm' ? (info.simd ?? null) : null,
    fma: info.fma ?? null,
    batch: o.batch,
    workers,
    threads: info.backend === 'wasm' ? (info.threads ?? 1) : null,
    image_size: size,
    reps,
    warmup,
    images_per_s: round((1000 * o.batch) / med, 1),
    images_per_s_best: round((1000 * o.batch) / best, 1),
    ms_per_step: round(med, 1),
    ms_per_step_best: round(best, 1),
    step_ms: times.map((t) => round(t, 1)),
    worker_ms: workerTimes.length ? round(median(workerTimes), 1) : null,
    overhead_ms: workerTimes.length ? round(median(times.map((t, i) => t - workerTimes[i])), 1) : null,
    update_ms: updateTimes.length ? round(median(updateTimes), 1) : null,
    reload_ms: reloadTimes.length ? round(median(reloadTimes), 1) : null,
    write_ms: writeTimes.length ? round(median(writeTimes), 1) : null,
    chunk_size: chunked ? limit : null,
    cpu_util: round(cpuUtil),
    final_loss: round(loss, 4),
    params,
    gmacs_per_img: round(gmacs, 3),
    peak_rss_mb: round(peak / 2 ** 20, 1),
    wasm_heap_mb: heap === null ? null : round(heap / 2 ** 20, 1),
    num_tensors: tf.memory().numTensors,
    machine: machineInfo(),
  };
}
