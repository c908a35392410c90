/**
 * What a second thread buys on this machine, per kind of work (issue 11, "inference latency on every
 * core"): the same work on one thread, then split in two halves run at once by this thread and one
 * worker thread (worker_threads on one shared WebAssembly.Memory), repetitions of the two interleaved
 * (1 2 1 2 ...) so load on a shared machine hits both alike. Ideal: 0.5x.
 *
 *   alu        gemm.wat's 4 x 8 tile step (f32x4 multiplies and adds) on registers only: the vector
 *              ALU ports; no cache, no memory
 *   l2-stream  sums of a 512 KiB buffer per thread, read again and again (in L2 either way)
 *   dram-stream  one pass of sums over a 256 MiB buffer (a half per thread): memory bandwidth
 *   gemm ...   gemm.wat's gemm_part_f32 on one ConvNeXt-T product at 224 px, batch 1, split in two
 *              halves of C's rows or columns as split.ts splits it (no pool: the bare hardware)
 *   pool gemm ...  the same product through the library's kernel threads (pool.ts: split.ts's
 *              claimed chunks, with their hand-offs) against gemm_f32 on one thread
 *   pool call  20 pool calls of one ~0.2 ms GELU chunk per thread: above 0.5x, the hand-offs' cost
 *
 *   node dist/bench/threads_hw.js [--rounds 9] [--kinds alu,l2-stream,...]
 *
 * Prints one JSON line per kind (best and median ms of each, and the ratios 2 / 1), then a table.
 */
import { Worker, isMainThread, workerData, parentPort } from 'worker_threads';
import { simdBinary } from '../src/backend/wasm_simd/binaries';
import { webAssembly } from '../src/backend/webassembly';
import { watBinary } from './script';

/** A bench-only module: the register-only ALU loop and the streaming sum. */
const HW_WAT = `(module
  (import "env" "memory" (memory 1 65536 shared))
  ;; iters x gemm.wat's 4 x 8 tile step on registers: 2 B vectors (scaled each step, so nothing is
  ;; loop-invariant), 4 A values, 8 accumulators: 10 f32x4 multiplies and 8 adds a step, no loads
  (func (export "alu") (param $iters i32) (result f32)
    (local $x v128) (local $b0 v128) (local $b1 v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128) (local $c4 v128) (local $c5 v128) (local $c6 v128) (local $c7 v128)
    (local.set $x (f32x4.splat (f32.const 0.9999999)))
    (local.set $b0 (f32x4.splat (f32.const 1)))
    (local.set $b1 (f32x4.splat (f32.const 2)))
    (local.set $a0 (f32x4.splat (f32.const 0.1)))
    (local.set $a1 (f32x4.splat (f32.const 0.2)))
    (local.set $a2 (f32x4.splat (f32.const 0.3)))
    (local.set $a3 (f32x4.splat (f32.const 0.4)))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $iters)))
      (local.set $b0 (f32x4.mul (local.get $b0) (local.get $x)))
      (local.set $b1 (f32x4.mul (local.get $b1) (local.get $x)))
      (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (local.get $a0) (local.get $b0))))
      (local.set $c1 (f32x4.add (local.get $c1) (f32x4.mul (local.get $a0) (local.get $b1))))
      (local.set $c2 (f32x4.add (local.get $c2) (f32x4.mul (local.get $a1) (local.get $b0))))
      (local.set $c3 (f32x4.add (local.get $c3) (f32x4.mul (local.get $a1) (local.get $b1))))
      (local.set $c4 (f32x4.add (local.get $c4) (f32x4.mul (local.get $a2) (local.get $b0))))
      (local.set $c5 (f32x4.add (local.get $c5) (f32x4.mul (local.get $a2) (local.get $b1))))
      (local.set $c6 (f32x4.add (local.get $c6) (f32x4.mul (local.get $a3) (local.get $b0))))
      (local.set $c7 (f32x4.add (local.get $c7) (f32x4.mul (local.get $a3) (local.get $b1))))
      (local.set $iters (i32.sub (local.get $iters) (i32.const 1)))
      (br $next)))
    (f32x4.extract_lane 0 (f32x4.add (f32x4.add (f32x4.add (local.get $c0) (local.get $c1)) (f32x4.add (local.get $c2) (local.get $c3)))
      (f32x4.add (f32x4.add (local.get $c4) (local.get $c5)) (f32x4.add (local.get $c6) (local.get $c7))))))
  ;; reps passes of a sum over [ptr, ptr + bytes), 64 bytes a step (4 independent sums)
  (func (export "stream") (param $ptr i32) (param $bytes i32) (param $reps i32) (result f32)
    (local $p i32) (local $end i32) (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local.set $end (i32.add (local.get $ptr) (local.get $bytes)))
    (block $done (loop $rep
      (br_if $done (i32.eqz (local.get $reps)))
      (local.set $p (local.get $ptr))
      (block $pass_done (loop $step
        (br_if $pass_done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $s0 (f32x4.add (local.get $s0) (v128.load offset=0 (local.get $p))))
        (local.set $s1 (f32x4.add (local.get $s1) (v128.load offset=16 (local.get $p))))
        (local.set $s2 (f32x4.add (local.get $s2) (v128.load offset=32 (local.get $p))))
        (local.set $s3 (f32x4.add (local.get $s3) (v128.load offset=48 (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $step)))
      (local.set $reps (i32.sub (local.get $reps) (i32.const 1)))
      (br $rep)))
    (f32x4.extract_lane 0 (f32x4.add (f32x4.add (local.get $s0) (local.get $s1)) (f32x4.add (local.get $s2) (local.get $s3))))))`;

/** gemm.wat's blocking (matmul.ts's KC and MC; not imported: that would load the backend into the worker). */
const KC = 512;
const MC = 64;

type Fn = (...args: number[]) => number;
interface Exports {
  alu: Fn;
  stream: Fn;
  gemm_part_f32: Fn;
}

async function instantiate(memory: object): Promise<Exports> {
  const wasm = webAssembly!;
  const hw = new wasm.Instance(new wasm.Module(await watBinary('hw.wat', HW_WAT, { simd: true, threads: true })), { env: { memory } });
  const gemm = new wasm.Instance(new wasm.Module(simdBinary('gemm', true)), { env: { memory } });
  return { ...(hw.exports as unknown as Exports), gemm_part_f32: (gemm.exports as { gemm_part_f32: Fn }).gemm_part_f32 };
}

/** One half of a job: [fn, ...args]. The control words: 0 seq, 1 done. */
const ARGS = 16;

async function workerMain(): Promise<void> {
  const { memory, ctrl: c, args: a } = workerData as { memory: object; ctrl: SharedArrayBuffer; args: SharedArrayBuffer };
  const ex = await instantiate(memory);
  const ctrl = new Int32Array(c);
  const args = new Float64Array(a);
  const fns = [ex.alu, ex.stream, ex.gemm_part_f32];
  let seen = 0;
  parentPort!.postMessage('ready');
  for (;;) {
    Atomics.wait(ctrl, 0, seen);
    seen = Atomics.load(ctrl, 0);
    if (seen < 0) return;
    const v = Array.from(args.subarray(1, ARGS));
    fns[args[0]](...v);
    Atomics.store(ctrl, 1, seen);
    Atomics.notify(ctrl, 1);
  }
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1];

interface Kind {
  name: string;
  one(): void;
  two(): void;
}

async function main(): Promise<void> {
  const argOf = (name: string, fallback: string): string => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
  };
  const rounds = Number(argOf('rounds', '9'));
  const wanted = argOf('kinds', '');
  // 300 MiB heap of our own: DRAM buffer, the GEMM operands, per-thread scratch
  const memory = new webAssembly!.Memory({ initial: 4800, maximum: 65536, shared: true }) as { buffer: SharedArrayBuffer };
  const ex = await instantiate(memory);
  const ctrlBuf = new SharedArrayBuffer(8);
  const argBuf = new SharedArrayBuffer(8 * ARGS);
  const ctrl = new Int32Array(ctrlBuf);
  const args = new Float64Array(argBuf);
  const worker = new Worker(__filename, { workerData: { hwWorker: true, memory, ctrl: ctrlBuf, args: argBuf } });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  let seq = 0;
  const fns = [ex.alu, ex.stream, ex.gemm_part_f32];
  /** Runs `mine` here and `theirs` on the worker at once. */
  const both = (mine: number[], theirs: number[]): void => {
    args.set(theirs);
    Atomics.store(ctrl, 0, ++seq);
    Atomics.notify(ctrl, 0);
    fns[mine[0]](...mine.slice(1));
    while (Atomics.load(ctrl, 1) !== seq) Atomics.wait(ctrl, 1, seq - 1, 5);
  };
  let top = 64;
  const alloc = (bytes: number): number => {
    const p = top;
    top += (bytes + 63) & ~63;
    if (top > memory.buffer.byteLength) throw new Error('threads_hw: heap too small');
    return p;
  };
  new Float32Array(memory.buffer).fill(0.5);
  const kinds: Kind[] = [];
  const ALU = 0;
  const STREAM = 1;
  const GEMM = 2;
  const aluIters = 8_000_000;
  kinds.push({ name: 'alu', one: () => ex.alu(aluIters), two: () => both([ALU, aluIters / 2], [ALU, aluIters / 2]) });
  // 512 KiB per thread: both halves fit one core's 2 MiB L2 too
  const l2 = [alloc(1 << 19), alloc(1 << 19)];
  kinds.push({
    name: 'l2-stream',
    one: () => {
      ex.stream(l2[0], 1 << 19, 400);
      ex.stream(l2[1], 1 << 19, 400);
    },
    two: () => both([STREAM, l2[0], 1 << 19, 400], [STREAM, l2[1], 1 << 19, 400]),
  });
  const big = 1 << 28;
  const dram = alloc(big);
  kinds.push({
    name: 'dram-stream',
    one: () => ex.stream(dram, big, 1),
    two: () => both([STREAM, dram, big / 2, 1], [STREAM, dram + big / 2, big / 2, 1]),
  });
  // ConvNeXt-T at 224 px, batch 1: the two MLP products of each stage (M = H * W)
  const scratch = [0, 1].map(() => [alloc(32 * KC), alloc(4 * MC * KC)]);
  for (const [m, k, n] of [
    [3136, 96, 384],
    [3136, 384, 96],
    [196, 384, 1536],
    [196, 1536, 384],
    [49, 768, 3072],
    [49, 3072, 768],
  ]) {
    const [a, b, bias, c] = [alloc(4 * m * k), alloc(4 * k * n), alloc(4 * n), alloc(4 * m * n)];
    const byRows = m >= n;
    const half = byRows ? Math.round(m / 2 / 4) * 4 : Math.round(n / 2 / 8) * 8;
    const part = (lo: number, hi: number, s: number[]): number[] =>
      byRows
        ? [GEMM, a + 4 * lo * k, b, bias, c + 4 * lo * n, hi - lo, k, n, s[0], KC, s[1], MC, 0, 0, k, n]
        : [GEMM, a, b + 4 * lo, bias + 4 * lo, c + 4 * lo, m, k, hi - lo, s[0], KC, s[1], MC, 0, 0, k, n];
    const total = byRows ? m : n;
    kinds.push({
      name: `gemm ${m}x${k}x${n}`,
      one: () => void ex.gemm_part_f32(...part(0, total, scratch[0]).slice(1)),
      two: () => both(part(0, half, scratch[0]), part(half, total, scratch[1])),
    });
  }
  // The library's own path: the threaded backend, its kernel threads (pool.ts) and gemm_f32 through split.ts
  const tf = await import('@tensorflow/tfjs-core');
  const { initBackend } = await import('../src/backend');
  const { attachKernelThreads, heapOffset, kernelThreadsOf, simdKernelsFor } = await import('../src/backend/wasm_simd/kernels');
  const { gemmOn } = await import('../src/backend/wasm_simd/matmul');
  const { POOLED_EXPORTS } = await import('../src/backend/wasm_simd/split');
  await initBackend({ backend: 'wasm', threads: 2 });
  const backend = tf.backend();
  const pool = kernelThreadsOf(backend);
  if (pool) {
    attachKernelThreads(backend, null);
    const raw = simdKernelsFor(backend)!;
    attachKernelThreads(backend, pool);
    const threaded = simdKernelsFor(backend)!;
    const heap = backend as unknown as Parameters<typeof heapOffset>[0];
    for (const [m, k, n] of [
      [3136, 96, 384],
      [196, 384, 1536],
      [49, 3072, 768],
    ]) {
      const ts = [tf.randomNormal([m, k]), tf.randomNormal([k, n]), tf.randomNormal([n]), tf.zeros([m, n])];
      const ptrs = ts.map((t) => heapOffset(heap, t));
      kinds.push({
        name: `pool gemm ${m}x${k}x${n}`,
        one: () => gemmOn(heap, raw, 'gemm_f32', ptrs, m, k, n),
        two: () => gemmOn(heap, threaded, 'gemm_f32', ptrs, m, k, n),
      });
    }
    // 20 calls of one GELU chunk of 2^18 floats (~0.2 ms) per thread: what a hand-off costs beyond its work
    const len = 1 << 18;
    const xs = [0, 1].map(() => heapOffset(heap, tf.zeros([len])));
    const gelu = POOLED_EXPORTS.indexOf('gelu_f32');
    const chunks = xs.map((x) => [x, x, len]);
    kinds.push({
      name: 'pool call x20',
      one: () => {
        for (let i = 0; i < 20; i++) for (const c of chunks) raw.gelu_f32(c[0], c[1], c[2]);
      },
      two: () => {
        for (let i = 0; i < 20; i++) pool.run(gelu, chunks, (c) => raw.gelu_f32(c[0], c[1], c[2]));
      },
    });
  }
  const chosen = wanted ? kinds.filter((k) => wanted.split(',').some((w) => k.name.startsWith(w))) : kinds;
  const times = chosen.map(() => ({ one: [] as number[], two: [] as number[] }));
  const time = (f: () => void): number => {
    const t0 = performance.now();
    f();
    return performance.now() - t0;
  };
  // warm-up
  for (const k of chosen) {
    k.one();
    k.two();
  }
  for (let r = 0; r < rounds; r++) {
    chosen.forEach((k, i) => {
      times[i].one.push(time(k.one));
      times[i].two.push(time(k.two));
    });
  }
  Atomics.store(ctrl, 0, -1);
  Atomics.notify(ctrl, 0);
  await new Promise((resolve) => worker.once('exit', resolve));
  const rows = chosen.map((k, i) => {
    const { one, two } = times[i];
    const ratios = one.map((t, j) => two[j] / t);
    return {
      kind: k.name,
      one_best_ms: +Math.min(...one).toFixed(2),
      one_median_ms: +median(one).toFixed(2),
      two_best_ms: +Math.min(...two).toFixed(2),
      two_median_ms: +median(two).toFixed(2),
      best_ratio: +(Math.min(...two) / Math.min(...one)).toFixed(3),
      median_ratio: +median(ratios).toFixed(3),
    };
  });
  for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n');
  process.stdout.write('\n| kind | 1 thread best / median ms | 2 threads best / median ms | 2 / 1 best | 2 / 1 median of pairs |\n|---|---|---|---|---|\n');
  for (const r of rows) {
    process.stdout.write(
      `| ${r.kind} | ${r.one_best_ms} / ${r.one_median_ms} | ${r.two_best_ms} / ${r.two_median_ms} | ${r.best_ratio.toFixed(2)} | ${r.median_ratio.toFixed(2)} |\n`,
    );
  }
}

if (isMainThread) {
  main().catch((e) => {
    process.stderr.write(`threads_hw: ${e instanceof Error ? e.stack : e}\n`);
    process.exit(1);
  });
} else if ((workerData as { hwWorker?: boolean } | null)?.hwWorker) {
  void workerMain();
}
