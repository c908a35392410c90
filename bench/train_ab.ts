/**
 * Before/after of the backward kernels in one process: training steps (src/bench/train_bench.ts's
 * step) alternate between kernel sets, so load on a shared machine hits each set alike:
 *
 *   package   the wasm backend's own kernels + our TypeScript training kernels (CONVNEXT_SIMD=0)
 *   forward   + our forward SIMD kernels only (depthwise, GEMM, GELU, LayerNorm: the state before
 *             the backward kernels of issue 11)
 *   all       + the backward kernels (gradient GEMMs, Linear/GELU/LayerNorm gradients, depthwise
 *             and patchify-conv gradients, Identity sharing): what users get
 *
 *   node dist/bench/train_ab.js [--arch convnext_atto] [--size 64] [--batch 32] [--rounds 4] [--sets package,forward,all]
 *
 * Prints one JSON line per set (median CPU ms and wall ms per step, images/s at one core from the
 * CPU time) and the ratios to the first set.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { registerSimdKernels, unregisterSimdKernels } from '../src/backend/simd';
import { createTrainStep } from '../src/bench/train_bench';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

/** Kernels of the backward pass that issue 11 added (own kernels, or fast paths in front). */
const BACKWARD = [
  'ConvNeXtGeluGrad',
  'ConvNeXtLayerNormGrad',
  'ConvNeXtLinearGrad',
  'DepthwiseConv2dNativeBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'Identity',
];

type KernelSet = Map<string, tf.KernelConfig | undefined>;

function snapshot(): KernelSet {
  return new Map(tf.getKernelsForBackend('wasm').map((k) => [k.kernelName, k]));
}

function install(set: KernelSet): void {
  for (const k of tf.getKernelsForBackend('wasm')) if (!set.has(k.kernelName)) tf.unregisterKernel(k.kernelName, 'wasm');
  for (const [name, config] of set) {
    if (tf.getKernel(name, 'wasm')) tf.unregisterKernel(name, 'wasm');
    if (config) tf.registerKernel(config);
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function main(): Promise<void> {
  const arch = arg('arch', 'convnext_atto');
  const size = Number(arg('size', '64'));
  const batch = Number(arg('batch', '32'));
  const rounds = Number(arg('rounds', '4'));
  const names = arg('sets', 'package,forward,all').split(',');
  await initBackend({ backend: 'wasm' });
  registerSimdKernels();
  const all = snapshot();
  unregisterSimdKernels();
  const pkg = snapshot();
  const forward: KernelSet = new Map(all);
  for (const name of BACKWARD) forward.set(name, pkg.get(name));
  const sets: Record<string, KernelSet> = { package: pkg, forward, all };
  for (const n of names) if (!sets[n]) throw new Error(`unknown set '${n}': use package, forward, all`);
  const step = createTrainStep({ arch, imageSize: size, batch });
  const cpu: Record<string, number[]> = {};
  const wall: Record<string, number[]> = {};
  const loss: Record<string, number> = {};
  for (const n of names) {
    install(sets[n]);
    step.run(); // warm-up per set (first calls compile and allocate)
    cpu[n] = [];
    wall[n] = [];
  }
  for (let r = 0; r < rounds; r++) {
    for (const n of names) {
      install(sets[n]);
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      loss[n] = step.run();
      const c = process.cpuUsage(c0);
      wall[n].push(performance.now() - w0);
      cpu[n].push((c.user + c.system) / 1000);
    }
  }
  install(all);
  step.dispose();
  const base = median(cpu[names[0]]);
  for (const n of names) {
    const m = median(cpu[n]);
    process.stdout.write(
      JSON.stringify({
        set: n, arch, size, batch, rounds,
        cpu_ms_per_step: +m.toFixed(1),
        wall_ms_per_step: +median(wall[n]).toFixed(1),
        images_per_cpu_s: +((1000 * batch) / m).toFixed(1),
        speedup_vs_first: +(base / m).toFixed(2),
        last_loss: +loss[n].toFixed(4),
      }) + '\n',
    );
  }
}

main().catch((e) => {
  process.stderr.write(`train_ab: ${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
