/**
 * split.ts's cuts of each kernel call, in this thread: a stand-in pool runs the chunks it is handed
 * here, on the single-threaded backend's kernels (every other one as a worker would, with other GEMM scratch), so every case of kernel_cases.ts must give the
 * unsplit call's bits; which calls are cut (thresholds) and how (guidedRange) are checked too. The
 * real kernel threads: kernel_threads.test.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { HeapBackend, SimdExports, simdKernelsFor } from '../../src/backend/wasm_simd/kernels';
import { allocGemmScratch } from '../../src/backend/wasm_simd/matmul';
import { GEMM_SCRATCH_ARGS, KernelThreads, MAX_CHUNKS, POOLED_EXPORTS, guidedRange, threadedKernels } from '../../src/backend/wasm_simd/split';
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
      expect(chunks.length).to.be.within(2, MAX_CHUNKS);
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

  it('guidedRange: a quarter (2 threads) of what is left each, at least `min`, aligned, decreasing; the rest last', () => {
    expect(guidedRange(100, 2, 10)).to.deep.equal([0, 25, 44, 58, 69, 79, 89, 100]);
    expect(guidedRange(3136, 2, 28, 4)).to.deep.equal([0, 784, 1372, 1816, 2148, 2396, 2584, 2724, 2828, 2908, 2968, 3012, 3044, 3072, 3100, 3136]);
    expect(guidedRange(100, 4, 30)).to.deep.equal([0, 30, 60, 100]);
    expect(guidedRange(100, 2, 51)).to.deep.equal([0, 100]);
    expect(guidedRange(100, 1, 1)).to.deep.equal([0, 100]);
    expect(guidedRange(0, 2, 1)).to.deep.equal([0, 0]);
    expect(guidedRange(5, 8, 1, 4)).to.deep.equal([0, 5]);
    expect(guidedRange(1 << 30, 2, 1)).to.have.length(MAX_CHUNKS + 1);
    for (const [total, threads, min, align] of [
      [49, 2, 7, 4],
      [200_004, 3, 1000, 16],
      [1536, 2, 4, 8],
    ]) {
      const b = guidedRange(total, threads, min, align);
      const sizes = b.slice(1).map((x, i) => x - b[i]);
      expect(b[0]).to.equal(0);
      expect(b[b.length - 1]).to.equal(total);
      expect(b.slice(1, -1).every((x) => x % align === 0)).to.equal(true);
      expect(sizes.every((x) => x >= min)).to.equal(true);
      expect(sizes.slice(0, -2).every((x, i) => x >= sizes[i + 1])).to.equal(true);
    }
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
