/**
 * Relaxed SIMD in Node 20: its V8 compiles f32x4.relaxed_madd only behind
 * --experimental-wasm-relaxed-simd, which Node 22 ships on by default (and Chrome since 114).
 * initBackend turns the flag on for the process, so our kernels' fused multiply-add variants
 * (wasm_simd/fma.ts) can serve; $CONVNEXT_RELAXED_SIMD=0 leaves V8 as it is.
 */
import * as v8 from 'v8';
import { Env, settings } from '../env';
import { relaxedSimdSupported } from './wasm_simd/fma';

/** Lets V8 compile relaxed SIMD unless $CONVNEXT_RELAXED_SIMD=0 (fma.ts then asks the engine). */
export function allowRelaxedSimd(env: Env = process.env): void {
  if (!settings.relaxedSimd(env) || relaxedSimdSupported()) return;
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    // an engine without the flag: the plain kernels serve
  }
}
