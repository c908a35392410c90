/**
 * Every setting the package reads from the environment, in one place (transformers.js's `env`).
 * Each reader takes the environment as an argument (default process.env) so tests and embedders can
 * pass their own; options given in code always win over these.
 *
 *   CONVNEXT_BACKEND   auto | node-gpu | webgpu | node | wasm | cpu   initBackend's default request
 *   CONVNEXT_WEBGPU_ADAPTER  Dawn adapter name                    (webgpu: which GPU)
 *   CONVNEXT_THREADS   1 (default) | auto | N                     wasm threads (the threaded build)
 *   CONVNEXT_SIMD      0 turns our wasm SIMD kernels off          (for A/B comparisons)
 *   CONVNEXT_RELAXED_SIMD  0 keeps our kernels' plain variants     (not their fused multiply-adds: A/B comparisons)
 *   CONVNEXT_XNNPACK_MATMUL  1: plain matrix products on XNNPACK's threads, not on our kernel threads
 *                      (threaded wasm with our kernels; for A/B comparisons)
 *   CONVNEXT_CACHE     zoo cache root                             (else $XDG_CACHE_HOME/convnext-tfjs, ~/.cache/convnext-tfjs)
 *   CONVNEXT_OFFLINE   1 = never touch the network
 *   CONVNEXT_MIRROR    base URL replacing https://dl.fbaipublicfiles.com/
 *   CONVNEXT_TEST_WORKER_FAULT  K:STEP[:exit|throw|oom]          (tests) training worker K fails at optimizer step STEP (1-based)
 */
export type Env = Readonly<Record<string, string | undefined>>;

function value(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

/** A boolean flag: set and not 0/false/no/off. */
function flag(env: Env, name: string): boolean {
  const v = value(env, name);
  return v !== undefined && !/^(0|false|no|off)$/i.test(v);
}

export const settings = {
  /** $CONVNEXT_BACKEND, lower-cased; undefined when unset. */
  backend: (env: Env = process.env) => value(env, 'CONVNEXT_BACKEND')?.toLowerCase(),
  /** $CONVNEXT_THREADS as given ('auto' or a count, validated by the backend); undefined when unset. */
  threads: (env: Env = process.env) => value(env, 'CONVNEXT_THREADS'),
  /** Whether our SIMD kernels may serve (not $CONVNEXT_SIMD=0). */
  simd: (env: Env = process.env) => value(env, 'CONVNEXT_SIMD') !== '0',
  /** Whether our kernels may use their relaxed-SIMD fused multiply-add variants (not $CONVNEXT_RELAXED_SIMD=0). */
  relaxedSimd: (env: Env = process.env) => value(env, 'CONVNEXT_RELAXED_SIMD') !== '0',
  /**
   * $CONVNEXT_XNNPACK_MATMUL as a flag: on the threaded wasm build with our kernel threads, the plain
   * matrix products go to XNNPACK's threads instead of gemm.wat split over ours (src/backend/wasm_simd/matmul.ts).
   */
  xnnpackMatMul: (env: Env = process.env) => flag(env, 'CONVNEXT_XNNPACK_MATMUL'),
  /** $CONVNEXT_WEBGPU_ADAPTER (Dawn's adapter=<name>), or undefined. */
  webgpuAdapter: (env: Env = process.env) => value(env, 'CONVNEXT_WEBGPU_ADAPTER'),
  /** $CONVNEXT_CACHE, or undefined. */
  cacheDir: (env: Env = process.env) => value(env, 'CONVNEXT_CACHE'),
  /** $XDG_CACHE_HOME, or undefined. */
  xdgCacheHome: (env: Env = process.env) => value(env, 'XDG_CACHE_HOME'),
  /** $CONVNEXT_OFFLINE as a flag. */
  offline: (env: Env = process.env) => flag(env, 'CONVNEXT_OFFLINE'),
  /** $CONVNEXT_MIRROR, or undefined. */
  mirror: (env: Env = process.env) => value(env, 'CONVNEXT_MIRROR'),
  /**
   * $CONVNEXT_TEST_WORKER_FAULT parsed: a test hook that makes data-parallel training worker `worker`
   * exit (or throw, or fail as out of its wasm heap) when it starts optimizer step `step` (1-based).
   * Undefined when unset or malformed.
   */
  testWorkerFault: (env: Env = process.env): { worker: number; step: number; how: 'exit' | 'throw' | 'oom' } | undefined => {
    const m = /^(\d+):(\d+)(?::(exit|throw|oom))?$/.exec(value(env, 'CONVNEXT_TEST_WORKER_FAULT') ?? '');
    return m ? { worker: +m[1], step: +m[2], how: (m[3] as 'exit' | 'throw' | 'oom' | undefined) ?? 'exit' } : undefined;
  },
} as const;
