/**
 * What the fused multiply-add variants give per kernel (src/backend/wasm_simd/fma.ts): each kernel
 * with an fma variant, plain and fused binaries on one memory and the same inputs, on the shapes of
 * ConvNeXt-T's inference (224 px, batch 1) and of convnext_atto's training step (64 px, batch 16),
 * one thread. Repetitions alternate plain / fused so the machine's drift hits both alike.
 *
 *   node dist/bench/fma_ab.js [--rounds 5]
 *
 * Prints one line per shape: best ms of each, fused / plain, and the products' GFLOP/s against the
 * register-only peak: the 4 x 8 tile's inner step on registers alone (no loads), plain and fused.
 */
import { initBackend } from '../src/backend';
import { simdBinary } from '../src/backend/wasm_simd/binaries';
import { relaxedSimdSupported } from '../src/backend/wasm_simd/fma';
import { SimdExports } from '../src/backend/wasm_simd/kernels';
import { webAssembly } from '../src/backend/webassembly';
import { watBinary } from './script';

type Kernels = Pick<SimdExports, 'gemm_f32' | 'gemm_tn_f32' | 'gemm_nt_f32' | 'depthwise_nhwc' | 'depthwise_filter_grad7_nhwc'>;
const MODULES = ['gemm', 'depthwise_nhwc', 'depthwise_filter_grad'];

/**
 * 8 accumulators, 2 B vectors, 1 A splat: the GEMM tile's step with no memory, `iters` times (a fused
 * copy by fuseMultiplyAdds). Its products are loop-invariant; V8 hoists no SIMD multiply out of a
 * loop (plain's peak below fused's says the multiplies ran). bench/threads_hw.ts's `alu` rescales B
 * each step instead: 2 more multiplies, which would understate the fused peak by a fifth.
 */
const PEAK_WAT = `(module
  (func (export "peak") (param $iters i32) (result f32)
    (local $a v128) (local $b0 v128) (local $b1 v128)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128) (local $c4 v128) (local $c5 v128) (local $c6 v128) (local $c7 v128)
    (local.set $a (f32x4.splat (f32.const 0.5)))
    (local.set $b0 (f32x4.splat (f32.const 1e-3)))
    (local.set $b1 (f32x4.splat (f32.const 2e-3)))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $iters)))
      (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $c1 (f32x4.add (local.get $c1) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $c2 (f32x4.add (local.get $c2) (f32x4.mul (local.get $b0) (local.get $b0))))
      (local.set $c3 (f32x4.add (local.get $c3) (f32x4.mul (local.get $b0) (local.get $b1))))
      (local.set $c4 (f32x4.add (local.get $c4) (f32x4.mul (local.get $b1) (local.get $b0))))
      (local.set $c5 (f32x4.add (local.get $c5) (f32x4.mul (local.get $b1) (local.get $b1))))
      (local.set $c6 (f32x4.add (local.get $c6) (f32x4.mul (local.get $a) (local.get $a))))
      (local.set $c7 (f32x4.add (local.get $c7) (f32x4.mul (local.get $b1) (local.get $a))))
      (local.set $iters (i32.sub (local.get $iters) (i32.const 1)))
      (br $next)))
    (f32x4.extract_lane 0 (f32x4.add (f32x4.add (f32x4.add (local.get $c0) (local.get $c1)) (f32x4.add (local.get $c2) (local.get $c3)))
      (f32x4.add (f32x4.add (local.get $c4) (local.get $c5)) (f32x4.add (local.get $c6) (local.get $c7))))))
)`;
const PEAK_FLOPS_PER_ITER = 8 * 4 * 2;

/** Byte offsets of the operands (64 MiB apart: every case fits) and of the GEMM scratch. */
const [A, B, C, BIAS, PANEL, PACKED] = [0, 64, 128, 192, 200, 208].map((mb) => mb << 20);

const CASES: { name: string; run: (k: Kernels) => void; flops?: number }[] = [
  ...(
    [
      ['ConvNeXt-T fc1 3136x96x384', 3136, 96, 384],
      ['ConvNeXt-T fc1 196x384x1536', 196, 384, 1536],
      ['ConvNeXt-T fc2 196x1536x384', 196, 1536, 384],
      ['ConvNeXt-T fc2 49x3072x768', 49, 3072, 768],
      ['atto train fc1 4096x40x160', 4096, 40, 160],
      ['atto train fc2 256x640x160', 256, 640, 160],
    ] as const
  ).map(([name, m, k, n]) => ({
    name: `gemm ${name}`,
    run: (e: Kernels) => e.gemm_f32(A, B, BIAS, C, m, k, n, PANEL, 512, PACKED, 256),
    flops: 2 * m * k * n,
  })),
  { name: 'gemm_tn atto dW 160x256x640', run: (e) => e.gemm_tn_f32(A, B, 0, C, 160, 256, 640, PANEL, 512, PACKED, 256), flops: 2 * 160 * 256 * 640 },
  { name: 'gemm_nt atto dX 256x640x160', run: (e) => e.gemm_nt_f32(A, B, 0, C, 256, 640, 160, PANEL, 512, PACKED, 256), flops: 2 * 256 * 640 * 160 },
  { name: 'depthwise ConvNeXt-T 1x56x56x96', run: (e) => e.depthwise_nhwc(A, B, BIAS, C, 1, 56, 56, 96, 7) },
  { name: 'depthwise ConvNeXt-T 1x14x14x384', run: (e) => e.depthwise_nhwc(A, B, BIAS, C, 1, 14, 14, 384, 7) },
  { name: 'depthwise atto train 16x16x16x40', run: (e) => e.depthwise_nhwc(A, B, BIAS, C, 16, 16, 16, 40, 7) },
  { name: 'depthwise filter grad atto 16x16x16x40', run: (e) => e.depthwise_filter_grad7_nhwc(A, B, C, 16, 16, 16, 40) },
  { name: 'depthwise filter grad atto 16x4x4x160', run: (e) => e.depthwise_filter_grad7_nhwc(A, B, C, 16, 4, 4, 160) },
];

function bestMs(f: () => void, reps: number): number {
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t = process.hrtime.bigint();
    f();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
  }
  return best;
}

async function main(): Promise<void> {
  const at = process.argv.indexOf('--rounds');
  const rounds = at > 0 ? Number(process.argv[at + 1]) : 5;
  await initBackend({ backend: 'wasm' }); // Node 20: lets V8 compile relaxed SIMD
  if (!webAssembly || !relaxedSimdSupported()) throw new Error('this engine does not compile relaxed SIMD (CONVNEXT_RELAXED_SIMD=0?)');
  const memory = new webAssembly.Memory({ initial: 4096, maximum: 4096, shared: false }) as { buffer: ArrayBuffer };
  const heap = new Float32Array(memory.buffer);
  for (let i = 0; i < heap.length; i++) heap[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  const variant = (fma: boolean): Kernels => {
    const exports = {};
    for (const name of MODULES)
      Object.assign(exports, new webAssembly!.Instance(new webAssembly!.Module(simdBinary(name, false, fma)), { env: { memory } }).exports);
    return exports as Kernels;
  };
  const plain = variant(false);
  const fused = variant(true);
  const { fuseMultiplyAdds } = require('../../scripts/wat-fma.js') as { fuseMultiplyAdds(t: string): { text: string } };
  const peakOf = async (text: string): Promise<(iters: number) => number> => {
    const binary = await watBinary('peak.wat', text, { simd: true, relaxed_simd: true });
    return (new webAssembly!.Instance(new webAssembly!.Module(binary), {}).exports as { peak(i: number): number }).peak;
  };
  const peaks = { plain: await peakOf(PEAK_WAT), fused: await peakOf(fuseMultiplyAdds(PEAK_WAT).text) };
  const gflops = { plain: 0, fused: 0 };
  for (let r = 0; r < rounds; r++)
    for (const v of ['plain', 'fused'] as const) gflops[v] = Math.max(gflops[v], (PEAK_FLOPS_PER_ITER * 1e6) / bestMs(() => peaks[v](1e6), 3) / 1e6);
  console.log(`# fused / plain per kernel, one thread, ${new Date().toISOString()}, best of ${rounds} alternating rounds`);
  console.log(`register-only peak of the tile step: plain ${gflops.plain.toFixed(1)} GFLOP/s, fused ${gflops.fused.toFixed(1)} GFLOP/s\n`);
  console.log('| kernel | plain ms | fused ms | fused / plain | fused GFLOP/s (of peak) |\n|---|---|---|---|---|');
  for (const c of CASES) {
    const best = { plain: Infinity, fused: Infinity };
    const reps = Math.max(
      3,
      Math.round(
        20 /
          Math.max(
            0.05,
            bestMs(() => c.run(plain), 2),
          ),
      ),
    );
    for (let r = 0; r < rounds; r++) {
      best.plain = Math.min(
        best.plain,
        bestMs(() => c.run(plain), reps),
      );
      best.fused = Math.min(
        best.fused,
        bestMs(() => c.run(fused), reps),
      );
    }
    const rate = c.flops ? `${(c.flops / best.fused / 1e6).toFixed(1)} (${((100 * c.flops) / best.fused / 1e6 / gflops.fused).toFixed(0)}%)` : '-';
    console.log(`| ${c.name} | ${best.plain.toFixed(3)} | ${best.fused.toFixed(3)} | ${(best.fused / best.plain).toFixed(2)} | ${rate} |`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
