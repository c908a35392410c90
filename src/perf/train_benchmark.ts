/**
 * Training speed of one configuration on this machine: full steps (forward, backward, AdamW) of
 * a randomly initialised model on random data, the step `convnext train` takes without its data
 * loading, and the step ../shared/peers/peer-train-bench.py times in PyTorch (same recipe: AdamW
 * lr 1e-3 wd 0.05, label smoothing 0.1, 1000 classes, no drop path, no data loading).
 *
 *   const r = await runTrainBenchmark({ arch: 'convnext_atto', imageSize: 64, batch: 32 });
 *   r.images_per_s;   // batch / median step time
 *
 * The step is `createTrainStep` (also used by bench/train_profile.ts to profile it per kernel).
 * workers > 1 is not implemented here yet (issue 11 §1, data-parallel workers): it is refused with
 * a clear error rather than silently timing one worker.
 * The library never prints; progress goes through onProgress.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend';
import { ConfigError } from '../errors';
import { countMacs } from '../model/configs';
import { ConvNeXt } from '../model/convnext';
import { createModel } from '../factory/create';
import { archOf } from '../factory/names';
import { AdamW } from '../train/adamw';
import { paramGroups } from '../train/layer_decay';
import { smoothOneHot, softCrossEntropy } from '../train/loss';
import { BenchProgress, machineInfo } from './benchmark';

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

export interface TrainBenchOptions {
  arch: string;
  /** Square input size (default 224). */
  imageSize?: number;
  /** Images per step. */
  batch: number;
  /** Data-parallel workers; only 1 exists yet (issue 11 §1). */
  workers?: number;
  backend?: string;
  threads?: number | 'auto';
  /** Timed steps (default 5). */
  reps?: number;
  /** Untimed steps first (default 2: the first steps allocate and compile). */
  warmup?: number;
  onProgress?: (e: BenchProgress) => void;
}

/** One training benchmark's figures (snake_case: the JSON `convnext bench --train --json` prints). */
export interface TrainBenchResult {
  mode: 'train';
  arch: string;
  backend: string;
  /** Whether our SIMD kernels served (wasm), null elsewhere. */
  simd: boolean | null;
  batch: number;
  workers: number;
  threads: number | null;
  image_size: number;
  reps: number;
  warmup: number;
  /** batch / median step time. */
  images_per_s: number;
  /** batch / fastest step time. */
  images_per_s_best: number;
  ms_per_step: number;
  ms_per_step_best: number;
  step_ms: number[];
  /** Process CPU time over wall time during the timed steps. */
  cpu_util: number;
  final_loss: number;
  params: number;
  /** Forward multiply-accumulates per image (a step is ~3x that). */
  gmacs_per_img: number;
  peak_rss_mb: number;
  num_tensors: number;
  machine: ReturnType<typeof machineInfo>;
}

const round = (x: number, d = 2): number => +x.toFixed(d);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function positiveInt(name: string, v: number): void {
  if (!(Number.isInteger(v) && v > 0)) throw new ConfigError(`${name} must be a positive integer, got ${v}`);
}

/** Times full training steps; see the file header. */
export async function runTrainBenchmark(o: TrainBenchOptions): Promise<TrainBenchResult> {
  const size = o.imageSize ?? 224;
  const reps = o.reps ?? 5;
  const warmup = o.warmup ?? 2;
  const workers = o.workers ?? 1;
  positiveInt('batch', o.batch);
  positiveInt('imageSize', size);
  positiveInt('reps', reps);
  positiveInt('workers', workers);
  if (!(Number.isInteger(warmup) && warmup >= 0)) throw new ConfigError(`warmup must be an integer >= 0, got ${warmup}`);
  if (size < 32) throw new ConfigError(`imageSize must be at least 32, got ${size}`);
  if (workers > 1) throw new ConfigError(`workers ${workers}: data-parallel training workers are not available yet (issue 11); use --workers 1`);
  const info = await initBackend({ backend: o.backend, threads: o.threads });
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  sampler.unref();
  const step = createTrainStep({ arch: o.arch, imageSize: size, batch: o.batch });
  const { model } = step;
  const params = model.numParams();
  const gmacs = countMacs(model.config, size, size) / 1e9;
  const arch = trainArch(o.arch);
  const times: number[] = [];
  let loss = NaN;
  let cpuUtil = 0;
  try {
    for (let i = 0; i < warmup; i++) {
      const t = performance.now();
      loss = step.run();
      o.onProgress?.({ phase: 'warmup', index: i + 1, total: warmup, ms: performance.now() - t });
    }
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    for (let i = 0; i < reps; i++) {
      const t = performance.now();
      loss = step.run();
      times.push(performance.now() - t);
      o.onProgress?.({ phase: 'rep', index: i + 1, total: reps, ms: times[i] });
    }
    const cpu = process.cpuUsage(cpu0);
    cpuUtil = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0);
  } finally {
    step.dispose();
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
    cpu_util: round(cpuUtil),
    final_loss: round(loss, 4),
    params,
    gmacs_per_img: round(gmacs, 3),
    peak_rss_mb: round(peak / 2 ** 20, 1),
    num_tensors: tf.memory().numTensors,
    machine: machineInfo(),
  };
}
