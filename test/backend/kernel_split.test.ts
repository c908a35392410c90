/**
 * split.ts's cuts of each kernel call, in this thread: a stand-in pool runs the chunks it is handed
 * here, on the single-threaded backend's kernels (every other one as a worker would, with other GEMM scratch), so every case of kernel_cases.ts must give the
 * unsplit call's bits; which calls are cut (thresholds) and how (splitRange) are checked too. The
 * real kernel threads: kernel_threads.test.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { HeapBackend, SimdExports, simdKernelsFor } from '../../src/backend/wasm_simd/kernels';
import { allocGemmScratch } from '../../src/backend/wasm_simd/matmul';
import { CHUNKS_PER_THREAD, GEMM_SCRATCH_ARGS, KernelThreads, POOLED_EXPORTS, splitRange, threadedKernels } from '../../src/backend/wasm_simd/split';
import { onBackend } from '../helpers';
import { KERNEL_CASES, sameBits } from './kernel_cases';

/** A pool of `size` threads that runs every chunk here, the workers' ones on `raw` with their own GEMM scratch. */
function inlinePool(raw: SimdExports, backend: HeapBackend, size: number): KernelThreads & { calls: number; chunks: number } {
  const scratch = allocGemmScratch(backend);
  return {
    size,
    live: true,
    calls: 0,
    chunks: 0,
    run(op, chunks, own) {
      this.calls++;
      this.chunks += chunks.length;
      expect(chunks.length).to.be.within(2, size * CHUNKS_PER_THREAD);
      // odd chunks as a worker would run them: its own scratch in place of the caller's
      chunks.forEach((args, i) => {
        if (i % 2 === 0) return own(args);
        const a = [...args];
        if (POOLED_EXPORTS[op] === 'gemm_part_f32') [a[GEMM_SCRATCH_ARGS[0]], a[GEMM_SCRATCH_ARGS[1]]] = [scratch.panel, scratch.packedA];
        (raw[POOLED_EXPORTS[op]] as (...a: number[]) => void)(...a);
      });
    },
  };
}

describe('SIMD kernel calls split among threads (split.ts)', () => {
  onBackend('wasm');

  it('splitRange: at most `threads` parts of at least `min` units, aligned inner bounds', () => {
    expect(splitRange(100, 2, 10)).to.deep.equal([0, 50, 100]);
    expect(splitRange(100, 4, 30)).to.deep.equal([0, 33, 67, 100]);
    expect(splitRange(100, 2, 51)).to.deep.equal([0, 100]);
    expect(splitRange(0, 2, 1)).to.deep.equal([0, 0]);
    expect(splitRange(49, 2, 7, 4)).to.deep.equal([0, 24, 49]);
    expect(splitRange(200_004, 3, 1, 16)).to.deep.equal([0, 66672, 133344, 200_004]);
    expect(splitRange(5, 8, 1, 4)).to.deep.equal([0, 4, 5]);
  });

  for (const size of [2, 3]) {
    for (const c of KERNEL_CASES) {
      it(`${c.name}, ${size} threads: ${c.split ? 'split, the same bits' : 'below the threshold: not split'}`, () => {
        const backend = tf.backend() as unknown as HeapBackend;
        const raw = simdKernelsFor(backend)!;
        const pool = inlinePool(raw, backend, size);
        const want = c.run(raw, backend);
        const got = c.run(threadedKernels(raw, pool), backend);
        expect(pool.calls, 'calls handed to the pool').to.equal(c.split ? 1 : 0);
        expect(sameBits(got, want), 'bits').to.equal(true);
      });
    }
  }

  it('a pool that is down takes no parts', () => {
    const backend = tf.backend() as unknown as HeapBackend;
    const raw = simdKernelsFor(backend)!;
    const pool = { ...inlinePool(raw, backend, 2), live: false };
    const c = KERNEL_CASES[0];
    expect(sameBits(c.run(threadedKernels(raw, pool), backend), c.run(raw, backend))).to.equal(true);
    expect(pool.calls).to.equal(0);
  });
});
