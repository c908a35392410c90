/**
 * Our SIMD depthwise kernel (src/backend/wasm_simd) against the package's own wasm kernel (XNNPACK) and
 * the cpu backend: the calls it takes, the calls it must pass on, and what it leaves behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { registerSimdKernels, simdKernelsFor, unregisterSimdKernels } from '../../src/backend/wasm_simd';
import { simdDepthwise } from '../../src/backend/wasm_simd/depthwise';
import { simdMatMul } from '../../src/backend/wasm_simd/matmul';
import { registerWasmTrainingKernels } from '../../src/backend/wasm_gradients';
import { expectClose, maxAbs, onBackend, randn, useBackend } from '../helpers';

type Pad = 'same' | 'valid' | number;
interface Case {
  name: string;
  x: [number, number, number, number];
  k: number;
  bias?: boolean;
  strides?: number;
  dilations?: number;
  pad?: Pad;
  activation?: 'relu';
  /** Whether the SIMD kernel takes the call. */
  simd: boolean;
}

const CASES: Case[] = [
  { name: 'ConvNeXt-T stage 1 (56x56x96, 7x7, bias)', x: [1, 56, 56, 96], k: 7, bias: true, simd: true },
  { name: 'batch 2, 9x5 (narrower than 4 + 2 pad)', x: [2, 9, 5, 8], k: 7, bias: true, simd: true },
  { name: 'image smaller than the kernel (3x2)', x: [1, 3, 2, 4], k: 7, bias: true, simd: true },
  { name: 'odd width 11, no bias', x: [3, 7, 11, 4], k: 7, simd: true },
  { name: '3x3', x: [1, 8, 9, 12], k: 3, bias: true, simd: true },
  { name: '5x5, numeric pad 2', x: [1, 10, 10, 16], k: 5, bias: true, pad: 2, simd: true },
  { name: 'stride 2 (passed on)', x: [1, 12, 12, 8], k: 7, bias: true, strides: 2, simd: false },
  { name: 'C % 4 != 0 (passed on)', x: [1, 9, 9, 6], k: 7, bias: true, simd: false },
  { name: 'dilation 2 (passed on)', x: [1, 14, 14, 8], k: 3, bias: true, dilations: 2, simd: false },
  { name: "'valid' padding (passed on)", x: [1, 10, 10, 8], k: 7, bias: true, pad: 'valid', simd: false },
  { name: 'relu activation (passed on)', x: [1, 9, 9, 8], k: 7, bias: true, activation: 'relu', simd: false },
];

function run(c: Case, seed: string): Float32Array {
  const [, , , ch] = c.x;
  return tf.tidy(() => {
    const x = tf.tensor4d(randn(tf.util.sizeFromShape(c.x), `${seed}x`), c.x);
    const filter = tf.tensor4d(randn(c.k * c.k * ch, `${seed}w`, 0.3), [c.k, c.k, ch, 1]);
    const bias = c.bias ? tf.tensor1d(randn(ch, `${seed}b`)) : undefined;
    const args = { x, filter, strides: c.strides ?? 1, pad: c.pad ?? 'same', dilations: c.dilations ?? 1 };
    const y =
      c.bias || c.activation
        ? tf.fused.depthwiseConv2d({ ...args, bias, activation: c.activation })
        : tf.depthwiseConv2d(args.x, args.filter, args.strides, args.pad, 'NHWC', args.dilations);
    return y.dataSync() as Float32Array;
  });
}

/** `f` three ways: with our kernels, with the package's own (XNNPACK) and on the cpu backend. */
async function threeWays(f: () => Float32Array): Promise<{ ours: Float32Array; xnnpack: Float32Array; cpu: Float32Array; scale: number }> {
  const ours = f();
  unregisterSimdKernels();
  const xnnpack = f();
  registerSimdKernels();
  await useBackend('cpu');
  const cpu = f();
  await useBackend('wasm');
  return { ours, xnnpack, cpu, scale: Math.max(1, maxAbs(cpu)) };
}

describe('SIMD kernels on the wasm backend', () => {
  onBackend('wasm', registerSimdKernels);
  after(() => registerSimdKernels()); // whatever a failed test left unregistered

  it('are put in front of the package kernels, idempotently, and bind to the backend heap', () => {
    const names = [
      'DepthwiseConv2dNative',
      'FusedDepthwiseConv2D',
      '_FusedMatMul',
      'BatchMatMul',
      'ConvNeXtGelu',
      'ConvNeXtLayerNorm',
      'ConvNeXtScaledResidual',
      // the backward kernels (test/backend/simd_grad.test.ts)
      'DepthwiseConv2dNativeBackpropInput',
      'DepthwiseConv2dNativeBackpropFilter',
      'Conv2DBackpropFilter',
      'Conv2DBackpropInput',
      'Identity',
      'ConvNeXtGeluGrad',
      'ConvNeXtLayerNormGrad',
      'ConvNeXtLinearGrad',
      'ConvNeXtAdamW',
    ];
    expect(registerSimdKernels()).to.have.members(names);
    expect(registerSimdKernels()).to.have.members(names);
    unregisterSimdKernels();
    expect(tf.getKernel('ConvNeXtGelu', 'wasm')).to.equal(undefined);
    expect(registerSimdKernels()).to.have.members(names);
    expect(simdKernelsFor(tf.backend())).to.have.property('depthwise_nhwc').that.is.a('function');
    expect(simdKernelsFor({})).to.equal(null);
  });

  describe('depthwise convolution', () => {
    for (const c of CASES) {
      it(`${c.name}: same as XNNPACK and cpu`, async () => {
        const { ours, xnnpack, cpu, scale } = await threeWays(() => run(c, c.name));
        expectClose(ours, xnnpack, 1e-6 * scale, 0);
        expectClose(ours, cpu, 2e-6 * scale, 0);
      });
    }

    it('takes exactly the calls it is written for', () => {
      for (const c of CASES) {
        const [, , , ch] = c.x;
        const taken = tf.tidy(() => {
          const x = tf.zeros(c.x);
          const filter = tf.zeros([c.k, c.k, ch, 1]);
          const bias = c.bias ? tf.zeros([ch]) : undefined;
          const attrs = {
            strides: c.strides ?? 1,
            pad: c.pad ?? 'same',
            dilations: c.dilations ?? 1,
            dataFormat: 'NHWC',
            activation: c.activation ?? 'linear',
          };
          const inputs = bias ? { x, filter, bias } : { x, filter };
          const out = simdDepthwise({ inputs, backend: tf.backend(), attrs: attrs as unknown as tf.NamedAttrMap });
          if (out) tf.engine().makeTensorFromTensorInfo(out).dispose();
          return out !== null;
        });
        expect(taken, c.name).to.equal(c.simd);
      }
    });

    it('leaves no tensors and no heap allocations behind', () => {
      const x = tf.randomNormal([1, 14, 14, 32]) as tf.Tensor4D;
      const w = tf.randomNormal([7, 7, 32, 1]) as tf.Tensor4D;
      const b = tf.randomNormal([32]) as tf.Tensor1D;
      const once = () => tf.tidy(() => tf.fused.depthwiseConv2d({ x, filter: w, bias: b, pad: 'same', strides: 1 }).dataSync());
      once();
      const tensors = tf.memory().numTensors;
      const ids = tf.backend().numDataIds();
      for (let i = 0; i < 20; i++) once();
      expect(tf.memory().numTensors).to.equal(tensors);
      expect(tf.backend().numDataIds()).to.equal(ids);
      tf.dispose([x, w, b]);
    });

    it('keeps the depthwise gradient (registered per kernel name)', () => {
      registerWasmTrainingKernels();
      const x = tf.randomNormal([1, 9, 9, 8]) as tf.Tensor4D;
      const w = tf.randomNormal([7, 7, 8, 1]) as tf.Tensor4D;
      const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')));
      const [dx, dw] = tf.grads(f)([x, w]);
      expect(dx.shape).to.deep.equal([1, 9, 9, 8]);
      expect(dw.shape).to.deep.equal([7, 7, 8, 1]);
      expect(maxAbs(dw.dataSync())).to.be.above(0);
      tf.dispose([x, w, dx, dw]);
    });
  });

  describe('matrix product', () => {
    interface MmCase {
      name: string;
      a: number[];
      b: number[];
      bias?: boolean;
      transposeB?: boolean;
      activation?: 'relu';
      simd: boolean;
      /** tfjs-backend-wasm 4.22's own _FusedMatMul adds the bias wrongly for a batched A: compare to cpu only. */
      xnnpackWrong?: boolean;
      /** Taken on the threaded build too (the package's transposed products are slow there as well). */
      anyBuild?: boolean;
    }
    const MM: MmCase[] = [
      { name: 'ConvNeXt-T stage 1 fc1 (3136x96 . 96x384, bias)', a: [3136, 96], b: [96, 384], bias: true, simd: true },
      { name: 'stage 4 fc2 at batch 1 (49x3072 . 3072x768: six 512-row panels)', a: [49, 3072], b: [3072, 768], bias: true, simd: true },
      { name: 'K = 1100 (a partial last panel), M = 7 (4-row and 1-row tiles)', a: [7, 1100], b: [1100, 16], bias: true, simd: true },
      { name: 'one row, N = 8, no bias (BatchMatMul)', a: [1, 5], b: [5, 8], simd: true },
      { name: 'batched A [3, 5, 12] against one B [1, 12, 24]', a: [3, 5, 12], b: [1, 12, 24], bias: true, simd: true, xnnpackWrong: true },
      { name: 'N % 8 != 0 (passed on)', a: [9, 16], b: [16, 12], bias: true, simd: false },
      { name: 'transposed B (gemm_nt, taken on both builds)', a: [9, 16], b: [24, 16], transposeB: true, simd: true, anyBuild: true },
      { name: 'relu activation (passed on)', a: [9, 16], b: [16, 24], bias: true, activation: 'relu', simd: false },
      { name: 'batched B (passed on)', a: [2, 5, 8], b: [2, 8, 16], simd: false },
    ];
    const mm = (c: MmCase, seed: string) =>
      tf.tidy(() => {
        const a = tf.tensor(randn(tf.util.sizeFromShape(c.a), `${seed}a`), c.a);
        const b = tf.tensor(randn(tf.util.sizeFromShape(c.b), `${seed}b`, 0.2), c.b);
        const n = c.transposeB ? c.b[c.b.length - 2] : c.b[c.b.length - 1];
        const bias = c.bias ? tf.tensor1d(randn(n, `${seed}bias`)) : undefined;
        const y =
          c.bias || c.activation ? tf.fused.matMul({ a, b, bias, transposeB: c.transposeB, activation: c.activation }) : tf.matMul(a, b, false, c.transposeB);
        return y.dataSync() as Float32Array;
      });

    for (const c of MM) {
      it(`${c.name}: same as XNNPACK and cpu`, async () => {
        const { ours, xnnpack, cpu, scale } = await threeWays(() => mm(c, c.name));
        if (!c.xnnpackWrong) expectClose(ours, xnnpack, 1e-6 * scale, 0);
        expectClose(ours, cpu, 1e-5 * scale, 0);
      });
    }

    it('takes exactly the calls it is written for (threaded build: only what XNNPACK gets wrong or runs slowly)', () => {
      const threaded = getThreadsCount() > 1;
      for (const c of MM) {
        const taken = tf.tidy(() => {
          const a = tf.zeros(c.a);
          const b = tf.zeros(c.b);
          const n = c.transposeB ? c.b[c.b.length - 2] : c.b[c.b.length - 1];
          const inputs = c.bias ? { a, b, bias: tf.zeros([n]) } : { a, b };
          const attrs = { transposeA: false, transposeB: !!c.transposeB, activation: c.activation ?? 'linear' };
          const out = simdMatMul({ inputs, backend: tf.backend(), attrs: attrs as unknown as tf.NamedAttrMap });
          if (out) tf.engine().makeTensorFromTensorInfo(out).dispose();
          return out !== null;
        });
        expect(taken, c.name).to.equal(threaded ? !!c.xnnpackWrong || !!c.anyBuild : c.simd);
      }
    });

    it('keeps no packed copy of B: the heap does not grow with each new weight matrix', function () {
      if (getThreadsCount() > 1) this.skip(); // the threaded build's products are XNNPACK's
      const a = tf.randomNormal([16, 256]);
      const once = () =>
        tf.tidy(() => {
          const b = tf.randomNormal([256, 512]); // a new "weight" each time, 512 KB
          tf.matMul(a, b).dataSync();
        });
      once();
      const ids = tf.backend().numDataIds();
      const heap = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;
      for (let i = 0; i < 20; i++) once();
      expect(tf.backend().numDataIds()).to.equal(ids);
      expect((tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength).to.equal(heap);
      a.dispose();
    });
  });
});
