/**
 * Memory and start-up of inference, each configuration in a fresh process (compiled to
 * dist/bench/memory.js; `npm run bench:memory`):
 *
 *   load     a converted ConvNeXt-T directory (random weights, written once to a temp dir) loaded
 *            with loadModel(), then one 224x224 forward: load time, first-forward time, peak RSS
 *            (the process's lifetime maximum) and its ratio to the weights' size; wasm with 1 thread
 *            (the default) and with a thread per core (the threaded build)
 *   soak     N forwards (default 1000, ConvNeXt-atto at 224): tensors, wasm heap, live JS heap
 *            (after a full GC) and RSS after a warm-up of N/10 passes, half way and at the end (V8 may
 *            enlarge its heap reservation once early on: RSS steps up while the live heap does not)
 *
 * Prints one JSON line per measurement, then a summary table. Usage:
 *   node dist/bench/memory.js [--soak-n 1000] [--arch convnext_tiny]
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { loadModel } from '../src/factory';
import { createModel } from '../src/factory';
import { writeModelDir } from '../src/io/model_dir';
import { readTensors } from '../src/util/tensors';

const MB = 2 ** 20;
const peakMb = (): number => +(process.resourceUsage().maxRSS / 1024).toFixed(1); // maxRSS is in KiB
const rssMb = (): number => +(process.memoryUsage().rss / MB).toFixed(1);

async function loadChild(dir: string): Promise<void> {
  const t0 = performance.now();
  const info = await initBackend({ backend: 'wasm' });
  const t1 = performance.now();
  const { model } = await loadModel(dir);
  const t2 = performance.now();
  const x = tf.randomNormal([1, 224, 224, 3]);
  const y = model.forward(x as tf.Tensor4D);
  await y.data();
  const t3 = performance.now();
  tf.dispose([x, y]);
  const weightsMb = (model.numParams() * 4) / MB;
  process.stdout.write(
    JSON.stringify({
      measure: 'load',
      arch: model.config.name ?? 'custom',
      threads: info.threads,
      backend_init_ms: +(t1 - t0).toFixed(0),
      load_ms: +(t2 - t1).toFixed(0),
      first_forward_ms: +(t3 - t2).toFixed(0),
      weights_mb: +weightsMb.toFixed(1),
      rss_mb: rssMb(),
      peak_rss_mb: peakMb(),
      peak_over_weights: +(peakMb() / weightsMb).toFixed(2),
    }) + '\n',
  );
}

/** Live JS heap after a full collection (the child runs with --expose-gc). */
function jsHeapMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return +(process.memoryUsage().heapUsed / MB).toFixed(2);
}

async function soakChild(arch: string, n: number): Promise<void> {
  const info = await initBackend({ backend: 'wasm' });
  const model = createModel(arch);
  const x = tf.randomNormal([1, 224, 224, 3]) as tf.Tensor4D;
  const wasmHeapMb = () => +((tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength / MB).toFixed(1);
  const pass = async () => {
    const y = model.forward(x);
    await y.data();
    y.dispose();
  };
  // Warm-up (JIT tiers, V8 heap sizing): the first tenth of the passes.
  const warm = Math.max(1, Math.floor(n / 10));
  for (let i = 0; i < warm; i++) await pass();
  const after = { tensors: tf.memory().numTensors, rss: rssMb(), js: jsHeapMb(), wasm: wasmHeapMb() };
  let half = 0;
  for (let i = warm; i < n; i++) {
    await pass();
    if (i === Math.floor(n / 2)) half = rssMb();
  }
  process.stdout.write(
    JSON.stringify({
      measure: 'soak',
      arch,
      threads: info.threads,
      forwards: n,
      warmup_forwards: warm,
      tensors_after_warmup: after.tensors,
      tensors_at_end: tf.memory().numTensors,
      wasm_heap_after_warmup_mb: after.wasm,
      wasm_heap_at_end_mb: wasmHeapMb(),
      js_heap_after_warmup_mb: after.js,
      js_heap_at_end_mb: jsHeapMb(),
      rss_after_warmup_mb: after.rss,
      rss_at_half_mb: half,
      rss_at_end_mb: rssMb(),
      peak_rss_mb: peakMb(),
    }) + '\n',
  );
}

function child(args: string[], env: Record<string, string>): Record<string, unknown> {
  const out = execFileSync(process.execPath, ['--expose-gc', __filename, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = out.trim().split('\n').pop() ?? '{}';
  process.stdout.write(line + '\n');
  return JSON.parse(line) as Record<string, unknown>;
}

async function main(argv: string[]): Promise<void> {
  const flag = (name: string, d: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : d);
  if (argv[0] === '--load-child') return loadChild(argv[1]);
  if (argv[0] === '--soak-child') return soakChild(argv[1], Number(argv[2]));
  const arch = flag('--arch', 'convnext_tiny');
  const soakN = Number(flag('--soak-n', '1000'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-mem-'));
  try {
    await initBackend({ backend: 'cpu' });
    const m = createModel(arch);
    writeModelDir(dir, await readTensors(m.getWeights()), { config: m.config });
    m.dispose();
    const rows = [
      child(['--load-child', dir], { CONVNEXT_THREADS: '1' }),
      child(['--load-child', dir], { CONVNEXT_THREADS: 'auto' }),
      child(['--soak-child', 'convnext_atto', String(soakN)], { CONVNEXT_THREADS: '1' }),
    ];
    process.stderr.write(
      rows
        .map((r) =>
          r.measure === 'load'
            ? `load ${arch} (${r.threads} thread${r.threads === 1 ? '' : 's'}): load ${r.load_ms} ms, first forward ${r.first_forward_ms} ms, ` +
              `peak RSS ${r.peak_rss_mb} MB = ${r.peak_over_weights}x the weights (${r.weights_mb} MB)`
            : `soak ${r.arch}, ${r.forwards} forwards, after ${r.warmup_forwards} -> at the end: tensors ${r.tensors_after_warmup} -> ${r.tensors_at_end}, ` +
              `wasm heap ${r.wasm_heap_after_warmup_mb} -> ${r.wasm_heap_at_end_mb} MB, live JS heap ${r.js_heap_after_warmup_mb} -> ${r.js_heap_at_end_mb} MB, ` +
              `RSS ${r.rss_after_warmup_mb} -> ${r.rss_at_half_mb} (half way) -> ${r.rss_at_end_mb} MB`,
        )
        .join('\n') + '\n',
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
