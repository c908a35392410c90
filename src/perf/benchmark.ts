/**
 * Inference speed of one configuration on this machine: arch x batch x backend x workers. Weights
 * are random (speed does not depend on their values); inputs are random NHWC float32.
 *
 *   const r = await runBenchmark({ arch: 'convnext_tiny', batch: 16, workers: 2 });
 *   r.ms_per_img;    // best of `reps` timed passes, per image (as the peers' scripts report it)
 *
 * workers 1 runs the model in this thread (what a user gets by default). workers > 1 starts an
 * InferencePool and times `workers` concurrent calls of `batch` images each, so ms_per_img is the
 * wall time of the round over batch * workers images. Timings include reading the output back.
 * The library never prints; progress goes through onProgress.
 */
import * as os from 'os';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend';
import { ConfigError } from '../errors';
import { countMacs } from '../model/configs';
import { createModel } from '../factory';
import { InferencePool } from '../parallel/pool';
import { archOf } from '../factory/names';

export interface BenchOptions {
  /** An architecture or pretrained tag (the name rule, src/factory/names.ts); the weights are random. */
  arch: string;
  /** Images per forward pass (per worker call with workers > 1). */
  batch: number;
  /** Model replicas in worker threads; 1 (default) runs in this thread. */
  workers?: number;
  /** TF.js backend (initBackend request); default $CONVNEXT_BACKEND, else auto. */
  backend?: string;
  /** wasm threads of the model in this thread (workers 1; see initBackend); pool workers use 1 each. */
  threads?: number | 'auto';
  /** Square input size (default 224). */
  imageSize?: number;
  /** Timed passes (default 3). */
  reps?: number;
  /** Untimed passes first (default 1). */
  warmup?: number;
  /** Called after model creation and after each pass. */
  onProgress?: (e: BenchProgress) => void;
}

export interface BenchProgress {
  phase: 'created' | 'warmup' | 'rep';
  /** 1-based pass number within the phase. */
  index?: number;
  total?: number;
  ms?: number;
}

/** What a benchmark ran: the fields inference and training results share (snake_case: printed as JSON). */
export interface BenchSetup {
  arch: string;
  backend: string;
  batch: number;
  workers: number;
  /** wasm threads per model (in this thread, or per worker); null on other backends. */
  threads: number | null;
  /** Whether our SIMD kernels were their fused multiply-add variants (relaxed SIMD); null where they did not serve. */
  fma: boolean | null;
  image_size: number;
  reps: number;
  warmup: number;
}

/** One benchmark's figures (snake_case: this is the JSON the CLI prints and bench/run.sh collects). */
export interface BenchResult extends BenchSetup {
  /** webgpu only: the adapter's description (e.g. 'NVIDIA H200'; SwiftShader when software). */
  adapter?: string;
  /** Best timed pass / images in it. */
  ms_per_img: number;
  /** Median timed pass / images in it. */
  ms_per_img_median: number;
  images_per_s: number;
  /** Every timed pass, ms (whole round). */
  pass_ms: number[];
  /**
   * CPU time of the process (all threads) over wall time during the timed passes: ~1 for one
   * thread, ~workers when every worker got a core; less means the machine was busy elsewhere.
   */
  cpu_util: number;
  /** Model creation (random init) on the main thread, ms. */
  create_ms: number;
  /** Worker pool start-up (workers > 1), ms; 0 otherwise. */
  pool_ms: number;
  params: number;
  weights_mb: number;
  gmacs_per_img: number;
  /** Peak resident set of the whole process (all threads), MB. */
  peak_rss_mb: number;
  /** Live tensors on the main thread after the run (0 = nothing left behind). */
  num_tensors: number;
}

export function checkPositiveInt(name: string, v: number): void {
  if (!(Number.isInteger(v) && v > 0)) throw new ConfigError(`${name} must be a positive integer, got ${v}`);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const round = (x: number, d = 2): number => +x.toFixed(d);

/**
 * Peak resident set of the process (all threads): resourceUsage().maxRSS is the lifetime peak;
 * sampling rss during the run covers platforms that report 0 there.
 */
function rssSampler(): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
    },
  };
}

function randomInput(n: number, shared: boolean): Float32Array {
  const data = shared ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.random() * 2 - 1;
  return data;
}

/** Times `reps` passes after `warmup` untimed ones; measures the process's CPU use over the timed ones. */
async function timePasses(
  pass: () => Promise<void>,
  warmup: number,
  reps: number,
  onProgress?: BenchOptions['onProgress'],
): Promise<{ times: number[]; cpuUtil: number }> {
  for (let i = 0; i < warmup; i++) {
    const t = performance.now();
    await pass();
    onProgress?.({ phase: 'warmup', index: i + 1, total: warmup, ms: performance.now() - t });
  }
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await pass();
    times.push(performance.now() - t);
    onProgress?.({ phase: 'rep', index: i + 1, total: reps, ms: times[i] });
  }
  const cpu = process.cpuUsage(cpu0);
  return { times, cpuUtil: (cpu.user + cpu.system) / 1000 / (performance.now() - wall0) };
}

/** Runs one benchmark configuration; see the file header for what is timed. */
export async function runBenchmark(opts: BenchOptions): Promise<BenchResult> {
  const arch = archOf(opts.arch);
  if (!arch) throw new ConfigError(`bench: '${opts.arch}' is a path or URL; give an architecture (e.g. convnext_tiny)`);
  const { batch } = opts;
  const workers = opts.workers ?? 1;
  const size = opts.imageSize ?? 224;
  const reps = opts.reps ?? 3;
  const warmup = opts.warmup ?? 1;
  checkPositiveInt('batch', batch);
  checkPositiveInt('workers', workers);
  checkPositiveInt('imageSize', size);
  checkPositiveInt('reps', reps);
  if (!(Number.isInteger(warmup) && warmup >= 0)) throw new ConfigError(`warmup must be an integer >= 0, got ${warmup}`);

  const info = await initBackend({ backend: opts.backend, threads: opts.threads });
  const { backend } = info;
  const rss = rssSampler();
  const t0 = performance.now();
  const model = createModel(arch, { init: 'random' });
  const createMs = performance.now() - t0;
  const params = model.numParams();
  const config = model.config;
  const perImage = size * size * config.inChannels;
  opts.onProgress?.({ phase: 'created', ms: createMs });

  let timed: { times: number[]; cpuUtil: number };
  let poolMs = 0;
  if (workers === 1) {
    try {
      const x = tf.tensor4d(randomInput(batch * perImage, false), [batch, size, size, config.inChannels]);
      try {
        timed = await timePasses(
          async () => {
            const y = model.forward(x);
            await y.data();
            y.dispose();
          },
          warmup,
          reps,
          opts.onProgress,
        );
      } finally {
        x.dispose();
      }
    } finally {
      model.dispose();
    }
  } else {
    const t1 = performance.now();
    let pool: InferencePool;
    try {
      pool = await InferencePool.create(model, { workers, backend });
    } finally {
      model.dispose(); // the replicas have their own copies
    }
    poolMs = performance.now() - t1;
    try {
      // One shared input for the whole round: each call gets a view, nothing is copied per pass.
      const input = randomInput(workers * batch * perImage, true);
      const shape = [batch, size, size, config.inChannels];
      timed = await timePasses(
        async () => {
          await Promise.all(
            Array.from({ length: workers }, (_, w) => pool.run('logits', input.subarray(w * batch * perImage, (w + 1) * batch * perImage), shape)),
          );
        },
        warmup,
        reps,
        opts.onProgress,
      );
    } finally {
      await pool.dispose();
    }
  }
  const peak = rss.stop();
  const { times } = timed;
  const images = batch * workers;
  const best = Math.min(...times);
  return {
    arch,
    backend,
    ...(info.adapter ? { adapter: info.adapter.description || info.adapter.device } : {}),
    batch,
    workers,
    threads: backend === 'wasm' ? (workers === 1 ? (info.threads ?? 1) : 1) : null,
    fma: info.fma ?? null,
    image_size: size,
    reps,
    warmup,
    ms_per_img: round(best / images),
    ms_per_img_median: round(median(times) / images),
    images_per_s: round((1000 * images) / best),
    pass_ms: times.map((t) => round(t, 1)),
    cpu_util: round(timed.cpuUtil),
    create_ms: round(createMs, 1),
    pool_ms: round(poolMs, 1),
    params,
    weights_mb: round((params * 4) / 2 ** 20, 1),
    gmacs_per_img: round(countMacs(config, size, size) / 1e9, 3),
    peak_rss_mb: round(peak / 2 ** 20, 1),
    num_tensors: tf.memory().numTensors,
  };
}

/** What the figures were measured on. */
export interface MachineInfo {
  host: string;
  cpu: string;
  cores: number;
  memory_gb: number;
  platform: string;
  node: string;
  tfjs: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    host: os.hostname(),
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memory_gb: round(os.totalmem() / 2 ** 30, 1),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    tfjs: tf.version_core,
  };
}
