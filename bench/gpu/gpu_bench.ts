/**
 * One short GPU check of the WebGPU backend (run by bench/gpu/run-gpu.sh): ConvNeXt-T at 224 on
 * webgpu at batches 1/8/32 — first-call time (shader compilation + upload), then ms per image
 * (best and median of timed passes, the read-back included) — with parity against wasm on the same
 * weights and inputs, and wasm's own ms per image for the ratio.
 *
 * Weights: the seeded official init with layer scale set to +-0.5 (with its 1e-6 default every
 * block is ~identity and a parity check proves little). Read to arrays on wasm, then loaded into a
 * model built after webgpu is set, so both backends run identical numbers.
 *
 *   node dist/bench/gpu/gpu_bench.js [--arch convnext_tiny] [--batches 1,8,32] [--image-size 224]
 *        [--reps 3] [--parity-batches 1,8] [--backend webgpu] [--out result.json]
 *
 * Prints one JSON object; with --out also writes it there (temp file + rename).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import { initBackend } from '../../src/backend';
import { releaseWebGpu } from '../../src/backend/webgpu';
import { ConvNeXt } from '../../src/model';
import { createModel } from '../../src/factory';

interface Args {
  arch: string;
  batches: number[];
  parityBatches: number[];
  imageSize: number;
  reps: number;
  backend: string;
  out?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { arch: 'convnext_tiny', batches: [1, 8, 32], parityBatches: [1, 8], imageSize: 224, reps: 3, backend: 'webgpu' };
  const list = (s: string) => s.split(',').map(Number);
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (v === undefined) throw new Error(`${k} needs a value`);
    if (k === '--arch') a.arch = v;
    else if (k === '--batches') a.batches = list(v);
    else if (k === '--parity-batches') a.parityBatches = list(v);
    else if (k === '--image-size') a.imageSize = Number(v);
    else if (k === '--reps') a.reps = Number(v);
    else if (k === '--backend') a.backend = v;
    else if (k === '--out') a.out = v;
    else throw new Error(`unknown option ${k}`);
  }
  for (const b of [...a.batches, ...a.parityBatches, a.imageSize, a.reps]) {
    if (!(Number.isInteger(b) && b > 0)) throw new Error(`batches, image size and reps must be positive integers, got ${b}`);
  }
  return a;
}

/** Seeded standard normals (Box-Muller), independent of any backend's RNG. */
function randn(n: number, seed: string): Float32Array {
  const rng = seedrandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  return out;
}

type Weights = Map<string, { shape: number[]; data: Float32Array }>;

async function makeWeights(arch: string): Promise<Weights> {
  const m = createModel(arch, { init: 'random', seed: 0 });
  const out: Weights = new Map();
  for (const [name, v] of m.getWeights()) {
    const data = Float32Array.from((await v.data()) as Float32Array);
    if (name.endsWith('gamma')) for (let i = 0; i < data.length; i++) data[i] = i % 2 ? -0.5 : 0.5;
    out.set(name, { shape: [...v.shape], data });
  }
  m.dispose();
  return out;
}

function build(arch: string, w: Weights): ConvNeXt {
  const m = createModel(arch, { init: 'zeros' });
  const tensors = new Map([...w].map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
  m.loadWeights(tensors);
  tf.dispose([...tensors.values()]);
  return m;
}

/** One pass: forward + read back; returns [ms, logits]. */
async function pass(model: ConvNeXt, x: tf.Tensor4D): Promise<[number, Float32Array]> {
  const t = performance.now();
  const y = model.forward(x);
  const data = (await y.data()) as Float32Array;
  y.dispose();
  return [performance.now() - t, data];
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function argmaxRows(d: Float32Array, cols: number): number[] {
  return Array.from({ length: d.length / cols }, (_, r) => {
    let best = 0;
    for (let c = 1; c < cols; c++) if (d[r * cols + c] > d[r * cols + best]) best = c;
    return best;
  });
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const per = a.imageSize * a.imageSize * 3;
  const maxBatch = Math.max(...a.batches, ...a.parityBatches);
  const input = randn(maxBatch * per, 'gpu-bench-input');
  const shape = (b: number): [number, number, number, number] => [b, a.imageSize, a.imageSize, 3];

  // wasm: the reference logits and its own speed (one thread: the embedded default).
  const wasmInfo = await initBackend({ backend: 'wasm' });
  const weights = await makeWeights(a.arch);
  const ref = new Map<number, Float32Array>();
  const wasm: { batch: number; ms_per_img: number }[] = [];
  {
    const m = build(a.arch, weights);
    for (const b of a.parityBatches) {
      const x = tf.tensor4d(input.subarray(0, b * per), shape(b));
      await pass(m, x); // warm-up
      const [ms, logits] = await pass(m, x);
      ref.set(b, logits);
      wasm.push({ batch: b, ms_per_img: round(ms / b) });
      x.dispose();
    }
    m.dispose();
  }

  const info = await initBackend({ backend: a.backend });
  const classes = createModel(a.arch, { init: 'zeros' });
  const numClasses = classes.numClasses;
  classes.dispose();
  const model = build(a.arch, weights);
  const gpu: Record<string, number | boolean | null>[] = [];
  for (const b of a.batches) {
    const x = tf.tensor4d(input.subarray(0, b * per), shape(b));
    const [first, logits] = await pass(model, x);
    await pass(model, x); // second warm-up (a few pipelines are created lazily)
    const times: number[] = [];
    for (let i = 0; i < a.reps; i++) times.push((await pass(model, x))[0]);
    times.sort((p, q) => p - q);
    const r = ref.get(b);
    let rel: number | null = null;
    let argmax: boolean | null = null;
    if (r) {
      let d = 0;
      let s = 1;
      for (let i = 0; i < r.length; i++) {
        d = Math.max(d, Math.abs(logits[i] - r[i]));
        s = Math.max(s, Math.abs(r[i]));
      }
      rel = d / s;
      argmax = JSON.stringify(argmaxRows(logits, numClasses)) === JSON.stringify(argmaxRows(r, numClasses));
    }
    gpu.push({
      batch: b,
      first_call_ms: round(first),
      ms_per_img: round(times[0] / b),
      ms_per_img_median: round(times[Math.floor(times.length / 2)] / b),
      images_per_s: round((1000 * b) / times[0], 1),
      parity_rel_vs_wasm: rel,
      argmax_equal: argmax,
    });
    x.dispose();
  }
  model.dispose();
  const result = {
    arch: a.arch,
    image_size: a.imageSize,
    reps: a.reps,
    backend: info.backend,
    adapter: info.adapter ?? null,
    skipped: info.skipped,
    wasm_threads: wasmInfo.threads ?? null,
    wasm,
    gpu,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: os.availableParallelism(),
    total_s: round((performance.now() - t0) / 1000, 1),
  };
  const json = JSON.stringify(result);
  process.stdout.write(json + '\n');
  if (a.out) {
    fs.mkdirSync(path.dirname(path.resolve(a.out)), { recursive: true });
    const tmp = `${a.out}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, JSON.stringify(result, null, 1) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, a.out);
  }
  releaseWebGpu();
}

main().catch((e) => {
  process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
