/**
 * Each kernel that split.ts shares among the kernel threads, one call at a time, at ConvNeXt-T's
 * shapes (224 px, batch 1: one call per stage, or per product): the call on the kernel threads
 * against the same call on the calling thread alone, in one process, repetitions of the two
 * interleaved so load on a shared machine hits both alike (issue 11, "inference latency on every
 * core"). The data stays in cache between repetitions, unlike in a forward (bench/infer_profile.ts):
 * this measures the split and the hand-offs, not the memory traffic between kernels. Ideal: 0.5x.
 *
 *   node dist/bench/kernel_calls.js [--threads 2] [--reps 20] [--rounds 15] [--only gelu]
 *
 * Prints a markdown table: median ms of each (median over rounds of the mean of `reps` calls), the
 * best and the median of the rounds' ratios.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { HeapBackend, SimdExports, attachKernelThreads, heapOffset, kernelThreadsOf, simdKernelsFor } from '../src/backend/wasm_simd/kernels';
import { KC, MC, packedAFor, scratchFor } from '../src/backend/wasm_simd/matmul';
import { arg, median } from './script';

type Call = [name: string, run: (k: SimdExports) => void];

/** Calls at ConvNeXt-T's batch-1 sizes, on random data allocated on `backend`'s heap. */
function convnextTinyCalls(backend: HeapBackend): Call[] {
  const at = (t: tf.Tensor): number => heapOffset(backend, t);
  const calls: Call[] = [];
  for (const [s, c] of [
    [56, 96],
    [28, 192],
    [14, 384],
    [7, 768],
  ]) {
    const n = s * s * c;
    const [x, y, out] = [tf.randomNormal([n]), tf.randomNormal([n]), tf.zeros([n])];
    const [gamma, bias, filter] = [tf.randomNormal([c]), tf.randomNormal([c]), tf.randomNormal([49 * c])];
    const [hidden, hiddenOut] = [tf.randomNormal([4 * n]), tf.zeros([4 * n])];
    calls.push([`depthwise 7x7 ${s}x${s}x${c}`, (k) => k.depthwise_nhwc(at(x), at(filter), at(bias), at(out), 1, s, s, c, 7)]);
    calls.push([`LayerNorm ${s}x${s}x${c}`, (k) => k.layer_norm_f32(at(x), at(gamma), at(bias), at(out), s * s, c, 1e-6)]);
    calls.push([`GELU ${s}x${s}x${4 * c}`, (k) => k.gelu_f32(at(hidden), at(hiddenOut), 4 * n)]);
    calls.push([`layer scale + residual ${s}x${s}x${c}`, (k) => k.scaled_residual_f32(at(x), at(y), at(gamma), at(out), s * s, c)]);
  }
  for (const [m, k, n] of [
    [3136, 96, 384],
    [3136, 384, 96],
    [784, 192, 768],
    [784, 768, 192],
    [196, 384, 1536],
    [196, 1536, 384],
    [49, 768, 3072],
    [49, 3072, 768],
  ]) {
    const [a, b, bias, c] = [tf.randomNormal([m * k]), tf.randomNormal([k * n]), tf.randomNormal([n]), tf.zeros([m * n])];
    calls.push([`product ${m}x${k}x${n}`, (ks) => ks.gemm_f32(at(a), at(b), at(bias), at(c), m, k, n, scratchFor(backend), KC, packedAFor(backend), MC)]);
  }
  return calls;
}

async function main(): Promise<void> {
  const threads = Number(arg('threads', '2'));
  const reps = Number(arg('reps', '20'));
  const rounds = Number(arg('rounds', '15'));
  const only = arg('only', '');
  await initBackend({ backend: 'wasm', threads });
  const backend = tf.backend() as unknown as HeapBackend;
  const pool = kernelThreadsOf(backend);
  if (!pool) throw new Error('no kernel threads (the threaded wasm build, --threads 2 or more, SIMD on)');
  const lines = [
    `# Kernel calls on ${pool.size} kernel threads vs the calling thread alone (ConvNeXt-T, 224 px, batch 1)`,
    '',
    `${new Date().toISOString()}; ${rounds} rounds of ${reps} calls each way, interleaved`,
    '',
    '| call | threads ms | one thread ms | best | median of ratios |',
    '|---|---|---|---|---|',
  ];
  for (const [name, run] of convnextTinyCalls(backend)) {
    if (!name.includes(only)) continue;
    const ms: [number[], number[]] = [[], []];
    for (let r = 0; r < rounds; r++) {
      for (const alone of [0, 1] as const) {
        attachKernelThreads(backend, alone ? null : pool);
        const kernels = simdKernelsFor(backend)!;
        run(kernels); // the first call of a round: page-in, wake-ups
        const t0 = performance.now();
        for (let i = 0; i < reps; i++) run(kernels);
        ms[alone].push((performance.now() - t0) / reps);
      }
    }
    attachKernelThreads(backend, pool);
    const ratios = ms[0].map((v, i) => v / ms[1][i]);
    const best = Math.min(...ms[0]) / Math.min(...ms[1]);
    lines.push(`| ${name} | ${median(ms[0]).toFixed(3)} | ${median(ms[1]).toFixed(3)} | ${best.toFixed(2)} | ${median(ratios).toFixed(2)} |`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((e) => {
  process.stderr.write(`kernel_calls: ${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
