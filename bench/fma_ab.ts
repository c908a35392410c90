/**
 * What the fused multiply-add variants give per kernel (src/backend/wasm_simd/fma.ts): each kernel
 * with an fma variant, plain and fused binaries on one memory and the same inputs, on the shapes of
 * ConvNeXt-T's inference (224 px, batch 1) and of convnext_atto's training step (64 px, batch 16),
 * one thread. Repetitions alternate plain / fused so the machine's drift hits both alike.
 *
 *   node dist/bench/fma_ab.js [--rounds 5]
 *
 * Prints one line per shape: best ms of each and fused / plain.
 */
import { initBackend } from '../src/backend';
import { simdBinary } from '../src/backend/wasm_simd/binaries';
import { relaxedSimdSupported } from '../src/backend/wasm_simd/fma';
import { SimdExports } from '../src/backend/wasm_simd/kernels';
import { webAssembly } from '../src/backend/webassembly';

type Kernels = Pick<SimdExports, 'gemm_f32' | 'gemm_tn_f32' | 'gemm_nt_f32' | 'depthwise_nhwc' | 'depthwise_filter_grad7_nhwc'>;
const MODULES = ['gemm', 'depthwise_nhwc', 'depthwise_filter_grad'];

/** Byte offsets of the operands (64 MiB apart: every case fits) and of the GEMM scratch. */
const [A, B, C, BIAS, PANEL, PACKED] = [0, 64, 128, 192, 200, 208].map((mb) => mb << 20);

const CASES: { name: string; run: (k: Kernels) => void }[] = [
  ...(
    [
      ['ConvNeXt-T fc1 3136x96x384', 3136, 96, 384],
      ['ConvNeXt-T fc1 196x384x1536', 196, 384, 1536],
      ['ConvNeXt-T fc2 196x1536x384', 196, 1536, 384],
      ['ConvNeXt-T fc2 49x3072x768', 49, 3072, 768],
      ['atto train fc1 4096x40x160', 4096, 40, 160],
      ['atto train fc2 256x640x160', 256, 640, 160],
    ] as const
  ).map(([name, m, k, n]) => ({ name: `gemm ${name}`, run: (e: Kernels) => e.gemm_f32(A, B, BIAS, C, m, k, n, PANEL, 512, PACKED, 256) })),
  { name: 'gemm_tn atto dW 160x256x640', run: (e) => e.gemm_tn_f32(A, B, 0, C, 160, 256, 640, PANEL, 512, PACKED, 256) },
  { name: 'gemm_nt atto dX 256x640x160', run: (e) => e.gemm_nt_f32(A, B, 0, C, 256, 640, 160, PANEL, 512, PACKED, 256) },
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
  console.log(`# fused / plain per kernel, one thread, ${new Date().toISOString()}, best of ${rounds} alternating rounds`);
  console.log('| kernel | plain ms | fused ms | fused / plain |\n|---|---|---|---|');
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
    console.log(`| ${c.name} | ${best.plain.toFixed(3)} | ${best.fused.toFixed(3)} | ${(best.fused / best.plain).toFixed(2)} |`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
