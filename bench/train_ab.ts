/**
 * Before/after of the backward kernels in one process: training steps (src/perf/train_benchmark.ts's
 * step) alternate between kernel sets, so load on a shared machine hits each set alike:
 *
 *   package   the wasm backend's own kernels + our TypeScript training kernels (CONVNEXT_SIMD=0)
 *   forward   + our forward SIMD kernels only (depthwise, GEMM, GELU, LayerNorm: the state before
 *             the backward kernels of issue 11)
 *   all       + the backward kernels (gradient GEMMs, Linear/GELU/LayerNorm gradients, depthwise
 *             and patchify-conv gradients, Identity sharing) and the AdamW kernel: what users get
 *
 *   node dist/bench/train_ab.js [--arch convnext_atto] [--size 64] [--batch 32] [--rounds 4] [--sets package,forward,all]
 *
 * Prints one JSON line per set (median CPU ms and wall ms per step, images/s at one core from the
 * CPU time) and the ratios to the first set.
 */
import { initBackend } from '../src/backend';
import { createTrainStep } from '../src/perf/train_benchmark';
import { KernelSetName, installKernelSet as install, kernelSets } from './kernel_sets';
import { arg, median } from './script';

async function main(): Promise<void> {
  const arch = arg('arch', 'convnext_atto');
  const size = Number(arg('size', '64'));
  const batch = Number(arg('batch', '32'));
  const rounds = Number(arg('rounds', '4'));
  const names = arg('sets', 'package,forward,all').split(',');
  await initBackend({ backend: 'wasm' });
  const sets = kernelSets();
  for (const n of names) if (!(n in sets)) throw new Error(`unknown set '${n}': use package, forward, all`);
  const step = createTrainStep({ arch, imageSize: size, batch });
  const cpu: Record<string, number[]> = {};
  const wall: Record<string, number[]> = {};
  const loss: Record<string, number> = {};
  for (const n of names) {
    install(sets[n as KernelSetName]);
    step.run(); // warm-up per set (first calls compile and allocate)
    cpu[n] = [];
    wall[n] = [];
  }
  for (let r = 0; r < rounds; r++) {
    for (const n of names) {
      install(sets[n as KernelSetName]);
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      loss[n] = step.run();
      const c = process.cpuUsage(c0);
      wall[n].push(performance.now() - w0);
      cpu[n].push((c.user + c.system) / 1000);
    }
  }
  install(sets.all);
  step.dispose();
  const base = median(cpu[names[0]]);
  for (const n of names) {
    const m = median(cpu[n]);
    process.stdout.write(
      JSON.stringify({
        set: n,
        arch,
        size,
        batch,
        rounds,
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
