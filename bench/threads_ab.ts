/**
 * Inference latency at several wasm thread set-ups in one run (issue 11, "inference latency on every
 * core"): one child process per set-up (the thread count is fixed per process), each holding the
 * same model; passes alternate between them (A B C A B C ...), so load on a shared machine hits each
 * alike. Prints best-of and median ms per pass for each, and each one's ratio to the first, and
 * each process's resident set after its warm-up pass.
 *
 *   node dist/bench/threads_ab.js [--arch convnext_tiny] [--size 224] [--batch 1] [--rounds 10] [--setups 1,auto-xnnpack,auto] [--base DIR]
 *
 * Set-ups: `N` or `auto` threads (initBackend's threads; auto = every core, at most 8) with our
 * kernel threads (pool.ts), as users get them; `-xnnpack` appended: the kernel threads stopped, so
 * only XNNPACK's kernels use the threads (the state before them); `-xnnmm`: kernel threads, but the
 * plain matrix products left to XNNPACK (CONVNEXT_XNNPACK_MATMUL=1, src/env.ts).
 * `+NAME=VALUE` after a set-up sets that variable in its process's environment (`auto+CONVNEXT_SIMD=0`);
 * `base:` before it runs the set-up with another checkout's build (`--base DIR`, built: the state
 * before a change, `git worktree add DIR main && (cd DIR && npm ci && npm run build)`).
 * One JSON line per set-up, then a summary line.
 */
import { ChildProcess, fork } from 'child_process';
import * as path from 'path';
import * as readline from 'readline';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { kernelThreadsOf } from '../src/backend/wasm_simd/kernels';
import { stopKernelThreads } from '../src/backend/wasm_simd/pool';
import { createModel } from '../src/factory';
import { arg, median } from './script';

/** Child: set up, then answer each 'pass' line on stdin with one forward's wall ms on stdout. */
async function child(setup: string, arch: string, size: number, batch: number): Promise<void> {
  const xnnpackOnly = setup.endsWith('-xnnpack');
  const t = setup.replace(/-(xnnpack|xnnmm)$/, '');
  const info = await initBackend({ backend: 'wasm', threads: t === 'auto' ? 'auto' : Number(t) });
  if (xnnpackOnly) await stopKernelThreads(tf.backend());
  const model = createModel(arch, { init: 'random' });
  const x = tf.randomUniform([batch, size, size, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
  const pass = (): number => {
    const t0 = performance.now();
    tf.tidy(() => void model.forward(x).dataSync());
    return performance.now() - t0;
  };
  pass(); // warm-up: first calls compile and allocate (and XNNPACK packs its weights)
  const pool = kernelThreadsOf(tf.backend());
  process.send!({ ready: true, threads: info.threads, kernelThreads: pool ? pool.size : 1, rss: process.memoryUsage().rss / 2 ** 20 });
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line === 'pass') process.send!({ ms: pass() });
    else break;
  }
  process.exit(0);
}

function ask(p: ChildProcess, line: string): Promise<Record<string, number | boolean>> {
  return new Promise((resolve, reject) => {
    const exited = (code: number | null): void => reject(new Error(`set-up process exited (${code})`));
    // one that died before this call (e.g. a --base build that cannot load) has already sent its 'exit'
    if (p.exitCode !== null || p.signalCode !== null) return exited(p.exitCode);
    p.once('exit', exited);
    p.once('message', (m) => {
      p.off('exit', exited);
      resolve(m as Record<string, number | boolean>);
    });
    if (line) p.stdin!.write(`${line}\n`);
  });
}

async function main(): Promise<void> {
  const arch = arg('arch', 'convnext_tiny');
  const size = Number(arg('size', '224'));
  const batch = Number(arg('batch', '1'));
  const childSetup = arg('child', '');
  if (childSetup) return child(childSetup, arch, size, batch);
  const rounds = Number(arg('rounds', '10'));
  const setups = arg('setups', '1,auto-xnnpack,auto').split(',');
  const base = arg('base', '');
  const procs = setups.map((s) => {
    // `base:` set-ups run another checkout's build (--base DIR: its dist/bench/threads_ab.js), `+NAME=VALUE` sets its environment
    const ours = !s.startsWith('base:'); // an older build may read -xnnmm itself
    const [setup, ...assignments] = (ours ? s.replace(/-xnnmm/, '+CONVNEXT_XNNPACK_MATMUL=1') : s.slice(5)).split('+');
    const env = { ...process.env, ...Object.fromEntries(assignments.map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)])) };
    const script = ours ? __filename : path.resolve(base, 'dist', 'bench', 'threads_ab.js');
    return fork(script, ['--child', setup, '--arch', arch, '--size', String(size), '--batch', String(batch)], {
      env,
      stdio: ['pipe', 'inherit', 'inherit', 'ipc'],
    });
  });
  const hello: Record<string, number | boolean>[] = [];
  for (const p of procs) hello.push(await ask(p, '')); // one at a time: start-up is not timed, but keep it off the others
  const times: number[][] = setups.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < procs.length; i++) times[i].push((await ask(procs[i], 'pass')).ms as number);
  }
  for (const p of procs) p.stdin!.end('stop\n');
  const best = times.map((t) => Math.min(...t));
  const med = times.map(median);
  setups.forEach((s, i) =>
    process.stdout.write(
      JSON.stringify({
        setup: s,
        threads: hello[i].threads,
        kernel_threads: hello[i].kernelThreads,
        rss_mb_after_warmup: +(hello[i].rss as number).toFixed(0),
        arch,
        image_size: size,
        batch,
        best_ms: +best[i].toFixed(1),
        median_ms: +med[i].toFixed(1),
        best_ratio: +(best[i] / best[0]).toFixed(3),
        median_ratio: +(med[i] / med[0]).toFixed(3),
        pass_ms: times[i].map((t) => +t.toFixed(1)),
      }) + '\n',
    ),
  );
  process.stdout.write(
    `${setups.map((s, i) => `${s}: best ${best[i].toFixed(1)} ms (x${(best[i] / best[0]).toFixed(3)}), median ${med[i].toFixed(1)} ms (x${(med[i] / med[0]).toFixed(3)})`).join('; ')}\n`,
  );
}

main().catch((e) => {
  process.stderr.write(`threads_ab: ${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
