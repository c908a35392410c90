/**
 * FCMAE pretraining step speed (compiled to dist/bench/fcmae_step.js): ours on the embedded default
 * (wasm, 1 thread, our SIMD and gradient kernels) beside an equivalent PyTorch dense-masked step
 * (bench/fcmae_step_torch.py, the parity reference at full size, 1 thread) in the same run, with
 * the ratio; and the peak RSS of a process doing pretraining steps.
 *
 * One step = dense-masked encoder + decoder (D 512, depth 1) + norm-pix loss + backward + AdamW.
 *
 *   node dist/bench/fcmae_step.js [--arch convnextv2_atto] [--batch 8] [--size 224] [--steps 3] [--repeats 3] [--json]
 */
import { execFileSync } from 'child_process';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { Fcmae } from '../src/fcmae/fcmae';
import { AdamW } from '../src/train/adamw';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}

async function main(): Promise<void> {
  const arch = arg('arch', 'convnextv2_atto');
  const batch = +arg('batch', '8');
  const size = +arg('size', '224');
  const steps = +arg('steps', '3');
  const repeats = +arg('repeats', '3');
  const info = await initBackend({ backend: arg('backend', 'wasm') });
  const f = new Fcmae(arch, { seed: 0 });
  const params = f.parameters();
  const opt = new AdamW(params, f.paramGroups(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.05 });
  const x = tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const step = (i: number) => {
    const mask = f.randomMask(batch, size, i);
    const { value, grads } = tf.variableGrads(() => f.loss(x, mask), [...params.values()]);
    const byTf = new Map([...params].map(([k, v]) => [v.name, k]));
    const named = new Map(Object.entries(grads).map(([k, g]) => [byTf.get(k)!, g]));
    opt.apply(named, 1e-4);
    value.dispose();
    tf.dispose([...named.values()]);
  };
  step(0);
  const rates: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) step(1 + r * steps + s);
    rates.push((batch * steps) / ((performance.now() - t0) / 1000));
  }
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
  const ours = {
    impl: 'convnext-tfjs',
    backend: info.backend,
    arch,
    batch,
    size,
    images_per_s: median(rates),
    runs: rates,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    tensors: tf.memory().numTensors,
  };
  opt.dispose();
  f.dispose();
  x.dispose();
  const short = arch.replace('convnextv2_', '');
  const py = process.env.PY ?? '/usr/bin/python3';
  let torch: { images_per_s: number; peak_rss_mb: number; torch: string } | null = null;
  try {
    const out = execFileSync(
      py,
      [
        path.resolve(__dirname, '../../bench/fcmae_step_torch.py'),
        '--arch',
        short,
        '--batch',
        String(batch),
        '--size',
        String(size),
        '--steps',
        String(steps),
        '--repeats',
        String(repeats),
      ],
      { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' } },
    );
    torch = JSON.parse(out.trim().split('\n').pop()!);
  } catch (e) {
    process.stderr.write(`PyTorch side failed: ${(e as Error).message.split('\n')[0]}\n`);
  }
  const ratio = torch ? ours.images_per_s / torch.images_per_s : null;
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify({ ours, torch, ratio }) + '\n');
  else {
    process.stdout.write(`FCMAE pretraining step, ${arch}, batch ${batch}, ${size}px, mask 0.6, decoder 512x1\n`);
    process.stdout.write(`  ours (${info.backend}, 1 thread): ${ours.images_per_s.toFixed(2)} img/s, peak RSS ${ours.peak_rss_mb.toFixed(0)} MB\n`);
    if (torch)
      process.stdout.write(
        `  PyTorch ${torch.torch} (1 thread): ${torch.images_per_s.toFixed(2)} img/s, peak RSS ${torch.peak_rss_mb.toFixed(0)} MB\n  ratio ours / PyTorch: ${ratio!.toFixed(2)}\n`,
      );
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
