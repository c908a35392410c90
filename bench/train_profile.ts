/**
 * Where a training step's time goes, per kernel and phase (forward / backward / optimizer): every
 * kernel registered for the current backend is wrapped with a timer (wasm and cpu kernels are
 * synchronous, so the cost of a call is the time around it); calls are keyed by kernel name plus,
 * for matrix products, their transposes, and for the heaviest, their input shapes. The step is
 * src/perf/train_benchmark.ts's createTrainStep (the `convnext bench --train` step).
 * Times are the process's CPU time (process.cpuUsage: user + system) around each call, not wall
 * time: on a shared machine wall time counts the time the thread waited for a core. With one wasm
 * thread the process's CPU time is the kernel's (plus V8's GC threads).
 *
 *   node dist/bench/train_profile.js [--arch convnext_atto] [--size 64] [--batch 32] [--steps 3] [--set all|forward|package] [--md out.md]
 *
 * --set picks the wasm kernel set (bench/kernel_sets.ts): 'forward' is the state before the
 * backward kernels, 'package' CONVNEXT_SIMD=0.
 *
 * Prints a markdown table (and writes it with --md). The time outside kernels (tape, tidy, JS
 * glue) is the step total minus the kernels' sum.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { StepPhase, createTrainStep } from '../src/perf/train_benchmark';
import { KernelSetName, installKernelSet, kernelSets } from './kernel_sets';
import { arg, report } from './script';

interface Stat {
  ms: number;
  calls: number;
}

function keyOf(name: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap | undefined): string {
  const a = (attrs ?? {}) as Record<string, unknown>;
  if (name === 'BatchMatMul' || name === '_FusedMatMul') {
    const t = `${a.transposeA ? 'T' : 'N'}${a.transposeB ? 'T' : 'N'}`;
    return `${name} ${t}`;
  }
  void inputs;
  return name;
}

async function main(): Promise<void> {
  const arch = arg('arch', 'convnext_atto');
  const size = Number(arg('size', '64'));
  const batch = Number(arg('batch', '32'));
  const steps = Number(arg('steps', '3'));
  const md = arg('md', '');
  const info = await initBackend();
  const backendName = tf.getBackend();
  const set = arg('set', 'all') as KernelSetName;
  if (backendName === 'wasm') {
    const sets = kernelSets();
    if (!sets[set]) throw new Error(`unknown --set '${set}': use all, forward, package`);
    installKernelSet(sets[set]);
  }
  let phase: StepPhase = 'forward';
  let recording = false;
  const stats = new Map<string, Stat>();
  const shapes = new Map<string, Map<string, Stat>>();
  for (const config of tf.getKernelsForBackend(backendName)) {
    const inner = config.kernelFunc;
    const kernelFunc = ((args: Parameters<tf.KernelFunc>[0]) => {
      if (!recording) return inner(args);
      const t = process.cpuUsage();
      const out = inner(args);
      const u = process.cpuUsage(t);
      const ms = (u.user + u.system) / 1000;
      const key = `${phase}\t${keyOf(config.kernelName, args.inputs, args.attrs)}`;
      const s = stats.get(key) ?? { ms: 0, calls: 0 };
      s.ms += ms;
      s.calls++;
      stats.set(key, s);
      const shape = Object.values(args.inputs)
        .map((x) => `[${x?.shape}]`)
        .join(' ');
      const byShape = shapes.get(key) ?? new Map<string, Stat>();
      const ss = byShape.get(shape) ?? { ms: 0, calls: 0 };
      ss.ms += ms;
      ss.calls++;
      byShape.set(shape, ss);
      shapes.set(key, byShape);
      return out;
    }) as tf.KernelFunc;
    tf.unregisterKernel(config.kernelName, backendName);
    tf.registerKernel({ ...config, kernelFunc });
  }
  const step = createTrainStep({ arch, imageSize: size, batch, onPhase: (p) => (phase = p) });
  step.run();
  step.run();
  let total = 0;
  let wall = 0;
  recording = true;
  for (let i = 0; i < steps; i++) {
    const t0 = process.cpuUsage();
    const w0 = performance.now();
    step.run();
    const u = process.cpuUsage(t0);
    total += (u.user + u.system) / 1000;
    wall += performance.now() - w0;
  }
  recording = false;
  step.dispose();

  const per = (ms: number) => ms / steps;
  const rows = [...stats].map(([k, s]) => ({ phase: k.split('\t')[0], kernel: k.split('\t')[1], ms: per(s.ms), calls: s.calls / steps, key: k }));
  rows.sort((a, b) => b.ms - a.ms);
  const kernelSum = rows.reduce((a, r) => a + r.ms, 0);
  const stepMs = per(total);
  const phaseSum = (p: string) => rows.filter((r) => r.phase === p).reduce((a, r) => a + r.ms, 0);
  const lines: string[] = [];
  lines.push(
    `# Training step profile: ${arch}, ${size} px, batch ${batch}, ${backendName}` +
      `${backendName === 'wasm' ? `, ${info.threads ?? 1} thread(s), kernel set '${set}'` : ''}`,
  );
  lines.push('');
  lines.push(
    `${new Date().toISOString()}; mean of ${steps} steps after 2 warm-up steps; step = forward (training mode) + ` +
      'softmax cross-entropy (smoothing 0.1, 1000 classes) + backward (tf.variableGrads) + AdamW; `node dist/bench/train_profile.js`.',
  );
  lines.push('');
  lines.push(
    `CPU time per step ${stepMs.toFixed(1)} ms (${((1000 * batch) / stepMs).toFixed(1)} images/s at one core; wall ${per(wall).toFixed(1)} ms); in kernels ${kernelSum.toFixed(1)} ms ` +
      `(forward ${phaseSum('forward').toFixed(1)}, backward ${phaseSum('backward').toFixed(1)}, optimizer ${phaseSum('optimizer').toFixed(1)}); ` +
      `outside kernels (tape, tidy, JS) ${(stepMs - kernelSum).toFixed(1)} ms`,
  );
  lines.push('');
  lines.push('| phase | kernel | CPU ms / step | % of step | calls / step | heaviest input shapes (ms / step) |');
  lines.push('|---|---|---|---|---|---|');
  for (const r of rows) {
    if (r.ms < (0.05 * stepMs) / 100 && rows.indexOf(r) > 30) continue;
    const top = [...(shapes.get(r.key) ?? new Map<string, Stat>())]
      .sort((a, b) => b[1].ms - a[1].ms)
      .slice(0, 2)
      .map(([s, st]) => `${s} ${per(st.ms).toFixed(1)}`)
      .join('; ');
    lines.push(`| ${r.phase} | ${r.kernel} | ${r.ms.toFixed(1)} | ${((100 * r.ms) / stepMs).toFixed(1)} | ${r.calls} | ${top} |`);
  }
  const text = lines.join('\n') + '\n';
  report(text, md);
}

main().catch((e) => {
  process.stderr.write(`train_profile: ${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
