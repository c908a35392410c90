/**
 * Where an inference forward's time goes, per kernel, on the wasm backend at a given thread count
 * (issue 11, "inference latency on every core"): every kernel registered for the backend is wrapped
 * with a timer (wasm kernels are synchronous, so a call's cost is the time around it). Wall time,
 * since latency is what threads buy; the process's CPU time beside it (all threads) says how much
 * of that wall time the threads were busy. Eval-mode forward of random weights on a random input.
 *
 *   node dist/bench/infer_profile.js [--arch convnext_tiny] [--size 224] [--batch 1] [--threads 1|2|auto] [--passes 5] [--xnnmm] [--md out.md]
 *
 * With more than one thread, passes alternate between our kernel threads on, off (src/backend/
 * wasm_simd/pool.ts; off: only XNNPACK's kernels use the threads), and our kernels, products
 * included, on the calling thread alone (XNNPACK's convs still threaded). Prints a markdown table (and
 * writes it with --md): best and median pass, and per kernel the median over passes of its per-pass sum.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { attachKernelThreads, kernelThreadsOf } from '../src/backend/wasm_simd/kernels';
import { createModel } from '../src/factory';
import { arg, median, report } from './script';

async function main(): Promise<void> {
  const arch = arg('arch', 'convnext_tiny');
  const size = Number(arg('size', '224'));
  const batch = Number(arg('batch', '1'));
  const passes = Number(arg('passes', '5'));
  const threadsArg = arg('threads', '1');
  const md = arg('md', '');
  // --xnnmm: plain products left to XNNPACK with the kernel threads on (src/env.ts)
  if (process.argv.includes('--xnnmm')) process.env.CONVNEXT_XNNPACK_MATMUL = '1';
  const info = await initBackend({ backend: 'wasm', threads: threadsArg === 'auto' ? 'auto' : Number(threadsArg) });
  let pass: Map<string, { wall: number; cpu: number; calls: number }> | null = null;
  for (const config of tf.getKernelsForBackend('wasm')) {
    const inner = config.kernelFunc;
    const kernelFunc = ((args: Parameters<tf.KernelFunc>[0]) => {
      if (!pass) return inner(args);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const out = inner(args);
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      const shape = config.kernelName.includes('MatMul') ? ` [${args.inputs.a?.shape}]x[${args.inputs.b?.shape}]` : '';
      const key = `${config.kernelName}${shape}`;
      const s = pass.get(key) ?? { wall: 0, cpu: 0, calls: 0 };
      s.wall += wall;
      s.cpu += (c.user + c.system) / 1000;
      s.calls++;
      pass.set(key, s);
      return out;
    }) as tf.KernelFunc;
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel({ ...config, kernelFunc });
  }
  const model = createModel(arch, { init: 'random' });
  const x = tf.randomUniform([batch, size, size, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
  const forward = (): void => tf.tidy(() => void model.forward(x).dataSync());
  forward();
  forward();
  // With kernel threads (threaded build), passes alternate between them on and off (the state
  // before them: XNNPACK's kernels alone use the threads), so the load on a shared machine hits both alike.
  const backend = tf.backend();
  const pool = kernelThreadsOf(backend);
  // and a third mode: our kernels, the products too, on the calling thread (a pool that is down):
  // each kernel's 2-thread time against its 1-thread time in one process
  const modes = pool ? ['kernel threads', 'calling thread only', 'ours on one thread'] : ['as built'];
  const down = pool && {
    size: pool.size,
    live: false,
    run: (): void => {
      throw new Error('a pool that is down takes no calls');
    },
  };
  const perPass = modes.map(() => [] as Map<string, { wall: number; cpu: number; calls: number }>[]);
  const totals = modes.map(() => [] as number[]);
  for (let i = 0; i < passes * modes.length; i++) {
    const m = i % modes.length;
    if (pool) attachKernelThreads(backend, [pool, null, down][m]);
    pass = new Map();
    const t0 = performance.now();
    forward();
    totals[m].push(performance.now() - t0);
    perPass[m].push(pass);
    pass = null;
  }
  if (pool) attachKernelThreads(backend, pool);
  x.dispose();
  model.dispose();
  const keys = [...new Set(perPass.flat().flatMap((p) => [...p.keys()]))];
  const rows = keys.map((k) => ({
    k,
    wall: perPass.map((ps) => median(ps.map((p) => p.get(k)?.wall ?? 0))),
    cpu: perPass.map((ps) => median(ps.map((p) => p.get(k)?.cpu ?? 0))),
    calls: perPass[0][0].get(k)?.calls ?? 0,
  }));
  rows.sort((a, b) => b.wall[b.wall.length - 1] - a.wall[a.wall.length - 1]);
  const med = totals.map(median);
  const lines = [
    `# Inference profile: ${arch}, ${size} px, batch ${batch}, wasm, ${info.threads ?? 1} thread(s), SIMD ${info.simd ? 'on' : 'off'}`,
    '',
    `${new Date().toISOString()}; ${passes} passes per mode after 2 warm-up${pool ? ', modes alternating' : ''}; ` +
      modes.map((m, i) => `${m}: forward best ${Math.min(...totals[i]).toFixed(1)} ms, median ${med[i].toFixed(1)} ms`).join('; '),
    '',
    `| kernel | ${modes.map((m) => `wall ms / pass (${m})`).join(' | ')} | ${modes.map((m) => `CPU ms / pass, all threads (${m})`).join(' | ')} | calls |`,
    `|---|${modes.map(() => '---|---|').join('')}---|`,
    ...rows
      .filter((r) => Math.max(...r.wall) >= 0.05)
      .map((r) => `| ${r.k} | ${r.wall.map((w) => w.toFixed(2)).join(' | ')} | ${r.cpu.map((c) => c.toFixed(1)).join(' | ')} | ${r.calls} |`),
  ];
  const text = lines.join('\n') + '\n';
  report(text, md);
}

main().catch((e) => {
  process.stderr.write(`infer_profile: ${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
