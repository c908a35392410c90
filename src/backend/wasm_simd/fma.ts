/**
 * Fused multiply-add variants of our kernels. gemm.wat, depthwise_nhwc.wat and
 * depthwise_filter_grad.wat each ship a second binary whose multiply-adds are relaxed SIMD's
 * f32x4.relaxed_madd (scripts/build-wasm.js): one rounding per multiply-add, and one vfmadd231ps
 * where the CPU has FMA. The 4 x 8 GEMM tile at 128 bits is bound by the ports its separate
 * multiplies and adds share, so the products run ~1.15x faster (bench/results/fma-2026-12-02.md).
 *
 * They serve wherever the engine validates relaxed SIMD: by default in Node >= 22 and Chrome >= 114;
 * Node 20 only with `--experimental-wasm-relaxed-simd` (allowRelaxedSimd() sets it; the CLI does for
 * its own process). $CONVNEXT_RELAXED_SIMD=0 keeps the plain variants, for A/B comparisons; their
 * depthwise sums match XNNPACK's bit for bit.
 */
import { Env, settings } from '../../env';
import { webAssembly } from '../webassembly';

/** (func (param v128 v128 v128) (result v128) (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2))) */
const PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01, 0x0b,
  0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b,
]);

/** Whether this engine compiles relaxed SIMD now (asked each time: a V8 flag can turn it on later). */
export function relaxedSimdSupported(): boolean {
  const api = webAssembly as { validate?: (bytes: Uint8Array) => boolean } | undefined;
  try {
    return !!api?.validate?.(PROBE);
  } catch {
    return false;
  }
}

let decided: boolean | undefined;

/**
 * Whether this thread's kernels are the fma variants: relaxed SIMD compiles here and
 * $CONVNEXT_RELAXED_SIMD is not 0. Fixed by the first kernels instantiated in a thread (every kernel
 * set of a thread then agrees); the kernel threads of a pool are told the caller's choice. In a page
 * (no `process`) only the engine decides.
 */
export function fmaKernels(env: Env = typeof process === 'undefined' ? {} : process.env): boolean {
  decided ??= settings.relaxedSimd(env) && relaxedSimdSupported();
  return decided;
}
