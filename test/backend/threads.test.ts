/**
 * The threaded wasm build (src/backend/wasm_threads.ts), in child processes: one backend per
 * process, so each thread count gets a fresh one. Same logits at 1 and 2 threads (XNNPACK's and our
 * kernel threads at work), the thread count reported, no tensor left behind, the process exits by
 * itself (neither the pthreads nor the kernel threads may keep it alive), bad counts.
 */
import { execFile } from 'child_process';
import * as path from 'path';
import { expect } from 'chai';
import { BackendError } from '../../src/errors';
import { requestedWasmThreads } from '../../src/backend';
import { MAX_WASM_THREADS } from '../../src/backend/wasm_threads';
import { maxAbs, maxAbsDiff } from '../helpers';

const DIST_SRC = path.join(__dirname, '..', '..', 'src');

// Prints {info, logits, ...} for convnext_atto with random non-trivial weights on a seeded input (large
// enough for the kernel threads to take its depthwise, GELU and LayerNorm calls), then returns without exiting.
const SCRIPT = `
const tf = require('@tensorflow/tfjs-core');
const { initBackend } = require(${JSON.stringify(path.join(DIST_SRC, 'backend'))});
const { kernelThreadsOf } = require(${JSON.stringify(path.join(DIST_SRC, 'backend', 'wasm_simd', 'kernels'))});
const { createModel } = require(${JSON.stringify(path.join(DIST_SRC, 'factory'))});
const { randomWeights, assignWeights } = require(${JSON.stringify(path.join(__dirname, '..', 'random_weights'))});
(async () => {
  const info = await initBackend({ backend: 'wasm' });
  const model = createModel('convnext_atto');
  assignWeights(model, randomWeights(model, 'threads')); // non-trivial layer scale and LayerNorm
  const x = tf.randomUniform([2, 128, 128, 3], -2, 2, 'float32', 7);
  const pool = kernelThreadsOf(tf.backend());
  tf.tidy(() => model.forward(x).dataSync());
  const tensors = tf.memory().numTensors;
  const calls = pool ? pool.calls : 0;
  const logits = tf.tidy(() => Array.from(model.forward(x).dataSync()));
  const poolCalls = pool ? pool.calls - calls : 0;
  process.stdout.write(JSON.stringify({ info, logits, poolCalls, leaked: tf.memory().numTensors - tensors }));
})();
`;

interface ChildResult {
  info: { threads: number; simd: boolean };
  logits: number[];
  /** Kernel calls of one forward that the SIMD kernel threads shared. */
  poolCalls: number;
  leaked: number;
}

function child(env: Record<string, string>): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', SCRIPT], { env: { ...process.env, CONVNEXT_SIMD: '1', ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)),
    );
  });
}

describe('threaded wasm backend', function () {
  this.timeout(120_000);

  it('gives the logits of the single-threaded build, reports its threads, and lets the process exit', async () => {
    const one = await child({ CONVNEXT_THREADS: '1' });
    const two = await child({ CONVNEXT_THREADS: '2' });
    const noSimd = await child({ CONVNEXT_THREADS: '2', CONVNEXT_SIMD: '0' });
    expect(one.info).to.include({ threads: 1, simd: true });
    expect(two.info).to.include({ threads: 2, simd: true });
    expect(noSimd.info).to.include({ threads: 2, simd: false });
    // atto at 128 px, batch 2: stage 1's 2 depthwise and stages 1-2's 4 GELU calls are above the thresholds (split.ts)
    expect(two.poolCalls).to.be.at.least(6);
    expect([one.poolCalls, noSimd.poolCalls]).to.deep.equal([0, 0]);
    expect([one.leaked, two.leaked, noSimd.leaked]).to.deep.equal([0, 0, 0]);
    expect(one.logits).to.have.length(2000);
    const scale = Math.max(1, maxAbs(one.logits));
    expect(maxAbsDiff(two.logits, one.logits)).to.be.at.most(1e-5 * scale);
    expect(maxAbsDiff(noSimd.logits, one.logits)).to.be.at.most(1e-5 * scale);
  });

  it("takes its thread count from the option, then $CONVNEXT_THREADS, else 1; 'auto' is every core", () => {
    const saved = process.env.CONVNEXT_THREADS;
    try {
      delete process.env.CONVNEXT_THREADS;
      expect(requestedWasmThreads()).to.equal(1);
      expect(requestedWasmThreads('auto')).to.be.within(1, MAX_WASM_THREADS);
      process.env.CONVNEXT_THREADS = '3';
      expect(requestedWasmThreads()).to.equal(3);
      expect(requestedWasmThreads(1)).to.equal(1);
      process.env.CONVNEXT_THREADS = 'auto';
      expect(requestedWasmThreads()).to.equal(requestedWasmThreads('auto'));
      for (const bad of ['0', '1.5', 'many', '9']) {
        process.env.CONVNEXT_THREADS = bad;
        expect(() => requestedWasmThreads(), bad).to.throw(BackendError, /\$CONVNEXT_THREADS must be 'auto' or an integer from 1 to 8/);
      }
      expect(() => requestedWasmThreads(0)).to.throw(BackendError, /threads must be 'auto' or an integer from 1 to 8, got '0'/);
    } finally {
      if (saved === undefined) delete process.env.CONVNEXT_THREADS;
      else process.env.CONVNEXT_THREADS = saved;
    }
  });
});
