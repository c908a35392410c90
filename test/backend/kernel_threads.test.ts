/**
 * The kernel thread pool (src/backend/wasm_simd/pool.ts) on the threaded wasm build, in a child
 * process (one backend per process): every case of kernel_cases.ts gives the same bits with the
 * pool's threads as on the calling thread alone, the calls above the thresholds do go to the pool;
 * $CONVNEXT_XNNPACK_MATMUL=1 leaves plain products to XNNPACK;
 * a pool that cannot start is no error (the kernels stay on one thread) and can be started later;
 * nothing is left behind; the process exits by itself with the pool's threads idle.
 */
import { execFile } from 'child_process';
import * as path from 'path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { startKernelThreads } from '../../src/backend/wasm_simd/pool';
import { onBackend } from '../helpers';

const DIST = path.join(__dirname, '..', '..');
const req = (p: string): string => `require(${JSON.stringify(path.join(DIST, p))})`;

const SCRIPT = `
const tf = require('@tensorflow/tfjs-core');
const { initBackend } = ${req('src/backend')};
const { attachKernelThreads, kernelThreadsOf, simdKernelsFor } = ${req('src/backend/wasm_simd/kernels')};
const { startKernelThreads, stopKernelThreads } = ${req('src/backend/wasm_simd/pool')};
const { KERNEL_CASES, sameBits } = ${req('test/backend/kernel_cases')};
(async () => {
  const info = await initBackend({ backend: 'wasm', threads: 2 });
  const backend = tf.backend();
  const pool = kernelThreadsOf(backend);
  const out = { info, size: pool && pool.size, cases: [], tensors: tf.memory().numTensors };
  for (const c of KERNEL_CASES) {
    const calls = pool.calls;
    const threaded = c.run(simdKernelsFor(backend), backend);
    const handed = pool.calls - calls;
    attachKernelThreads(backend, null);
    const alone = c.run(simdKernelsFor(backend), backend);
    attachKernelThreads(backend, pool);
    out.cases.push({ name: c.name, split: c.split, handed, same: sameBits(threaded, alone) });
  }
  // a plain product goes to gemm.wat over the kernel threads, or with $CONVNEXT_XNNPACK_MATMUL to XNNPACK's
  const a = tf.randomNormal([196, 384], 0, 1, 'float32', 1);
  const b = tf.randomNormal([384, 1536], 0, 1, 'float32', 2);
  const product = () => {
    const calls = pool.calls;
    const y = tf.matMul(a, b);
    const v = y.dataSync();
    y.dispose();
    return { handed: pool.calls - calls, v };
  };
  const ours = product();
  process.env.CONVNEXT_XNNPACK_MATMUL = '1';
  const xnn = product();
  delete process.env.CONVNEXT_XNNPACK_MATMUL;
  let diff = 0;
  for (let i = 0; i < ours.v.length; i++) diff = Math.max(diff, Math.abs(ours.v[i] - xnn.v[i]));
  out.matmul = { ours: ours.handed, xnnpack: xnn.handed, diff };
  tf.dispose([a, b]);
  out.tensorsAfter = tf.memory().numTensors;
  await stopKernelThreads(backend);
  out.stopped = kernelThreadsOf(backend) === null;
  out.broken = await startKernelThreads(backend, 2, ${JSON.stringify(path.join(__dirname, 'no_such_worker.js'))});
  out.afterBroken = kernelThreadsOf(backend) === null && sameBits(KERNEL_CASES[0].run(simdKernelsFor(backend), backend), KERNEL_CASES[0].run(simdKernelsFor(backend), backend));
  out.restarted = await startKernelThreads(backend, 2);
  const again = kernelThreadsOf(backend);
  const calls = again.calls;
  KERNEL_CASES[0].run(simdKernelsFor(backend), backend);
  out.restartedServes = again.calls === calls + 1;
  process.stdout.write(JSON.stringify(out));
})();
`;

interface ChildResult {
  info: { threads: number; simd: boolean };
  size: number;
  cases: { name: string; split: boolean; handed: number; same: boolean }[];
  tensors: number;
  tensorsAfter: number;
  stopped: boolean;
  broken: boolean;
  afterBroken: boolean;
  restarted: boolean;
  restartedServes: boolean;
  matmul: { ours: number; xnnpack: number; diff: number };
}

function child(): Promise<ChildResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, CONVNEXT_SIMD: '1' };
  delete env.CONVNEXT_THREADS;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', SCRIPT], { env, timeout: 240_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      try {
        if (err) throw err;
        resolve(JSON.parse(stdout) as ChildResult);
      } catch (e) {
        reject(new Error(`${e instanceof Error ? e.message : e}\nstdout: ${stdout.slice(0, 2000)}\nstderr: ${stderr}`));
      }
    });
  });
}

describe('SIMD kernel threads (threaded wasm build)', function () {
  this.timeout(300_000);

  it('give the one-thread bits, take the calls above the thresholds, fall back when they cannot start, and let the process exit', async () => {
    const r = await child(); // resolves only once the child process has exited by itself
    expect(r.info).to.include({ threads: 2, simd: true });
    expect(r.size).to.equal(2);
    for (const c of r.cases) {
      expect(c.same, c.name).to.equal(true);
      expect(c.handed, c.name).to.equal(c.split ? 1 : 0);
    }
    expect(r.cases).to.have.length.above(10);
    expect(r.tensorsAfter).to.equal(r.tensors);
    expect(r.matmul.ours, 'kernel-thread calls of a plain product').to.equal(1);
    expect(r.matmul.xnnpack, 'with CONVNEXT_XNNPACK_MATMUL=1').to.equal(0);
    expect(r.matmul.diff).to.be.below(1e-3);
    expect(r.stopped).to.equal(true);
    expect(r.broken).to.equal(false);
    expect(r.afterBroken).to.equal(true);
    expect(r.restarted).to.equal(true);
    expect(r.restartedServes).to.equal(true);
  });

  describe('on the single-threaded build', () => {
    onBackend('wasm');
    it('starts no pool (one thread, or a heap that is not shared)', async () => {
      expect(await startKernelThreads(tf.backend(), 2)).to.equal(false);
      expect(await startKernelThreads(tf.backend(), 1)).to.equal(false);
      expect(await startKernelThreads({}, 2)).to.equal(false);
    });
  });
});
