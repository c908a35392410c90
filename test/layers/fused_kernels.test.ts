/**
 * GELU and LayerNorm as kernels of their own: on wasm the SIMD kernels (src/backend/wasm_simd) run them,
 * elsewhere the composites of tfjs-core ops do. Same values, same gradients (registered for the
 * kernel names), and each call goes where it should.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { registerSimdKernels } from '../../src/backend/wasm_simd';
import { gelu, geluComposite } from '../../src/layers/gelu';
import { GELU_KERNEL } from '../../src/kernel_names';
import { layerNorm, layerNormComposite } from '../../src/layers/layer_norm';
import { LAYER_NORM_KERNEL } from '../../src/kernel_names';
import { expectClose, maxAbs, onBackend, randn, useBackend } from '../helpers';
import { refGelu } from '../reference';

async function kernelsOf(f: () => tf.Tensor): Promise<string[]> {
  const info = await tf.profile(() => tf.tidy(f));
  return [...new Set(info.kernels.map((k) => k.name))];
}

describe('GELU and LayerNorm kernels', () => {
  onBackend('wasm', registerSimdKernels);

  describe('gelu', () => {
    // Around 0, the clamp at |z| = 4, far tails, and a spread of ordinary values.
    const special = [0, -0, 1e-30, -1e-30, 1e-8, 0.5, -0.5, 1, -1, 3, -3, 5.656, -5.656, 5.66, -5.66, 6, -6, 20, -20, 1e4, -1e4];
    const xs = Float32Array.from([...special, ...randn(4096 - special.length, 'gelu', 3)]);

    // float32 GELU carries erf's absolute error times |x| / 2 (1 + erf cancels in the left tail).
    const bound = (ys: ArrayLike<number>, errErf: number) => {
      let worst = 0;
      for (let i = 0; i < xs.length; i++) {
        const excess = Math.abs(ys[i] - refGelu(xs[i])) / (errErf * Math.max(1, Math.abs(xs[i])) + 1e-7 * Math.abs(refGelu(xs[i])));
        worst = Math.max(worst, excess);
      }
      return worst;
    };

    it('runs the SIMD kernel on wasm, as close to the float64 GELU as the composite', async () => {
      const x = tf.tensor1d(xs);
      expect(await kernelsOf(() => gelu(x))).to.deep.equal([GELU_KERNEL]);
      const got = tf.tidy(() => gelu(x).dataSync());
      const composite = tf.tidy(() => geluComposite(x).dataSync());
      // erf within 2e-7 (ours: Eigen's rational form; TF.js Erf: A&S 7.1.26, 1.5e-7 + rounding).
      expect(bound(got, 2e-7)).to.be.at.most(1);
      expect(bound(composite, 2e-7)).to.be.at.most(1);
      expect(got[0]).to.equal(0);
      expect(got[special.indexOf(-1e4)]).to.equal(0); // gelu(-1e4) = -0
      expect(got[special.indexOf(1e4)]).to.equal(1e4);
      x.dispose();
    });

    it('falls back to the composite when the size is not a multiple of 4, or off wasm', async () => {
      const x = tf.tensor1d([0.3, -1.2, 2.5]);
      expect(await kernelsOf(() => gelu(x)))
        .to.include('Erf')
        .and.not.include(GELU_KERNEL);
      await useBackend('cpu');
      const y = tf.tensor1d(xs.subarray(0, 8));
      expect(await kernelsOf(() => gelu(y)))
        .to.include('Erf')
        .and.not.include(GELU_KERNEL);
      tf.dispose([y]);
      await useBackend('wasm');
      x.dispose();
    });

    it('has the composite gradient', () => {
      const x = tf.tensor2d(randn(64, 'gelu-grad', 2), [8, 8]);
      const dy = tf.tensor2d(randn(64, 'gelu-dy'), [8, 8]);
      const ours = tf.tidy(() =>
        tf
          .grad((v: tf.Tensor) => tf.sum(tf.mul(gelu(v), dy)))(x)
          .dataSync(),
      );
      const ref = tf.tidy(() =>
        tf
          .grad((v: tf.Tensor) => tf.sum(tf.mul(geluComposite(v), dy)))(x)
          .dataSync(),
      );
      expectClose(ours, ref, 1e-6, 1e-5);
      tf.dispose([x, dy]);
    });
  });

  describe('layerNorm', () => {
    const shape: [number, number, number, number] = [2, 5, 7, 12];
    const size = 2 * 5 * 7 * 12;

    it('runs the SIMD kernel on wasm, matching the composite (NHWC and pooled [N, C], eps 1e-6 and 1e-12)', async () => {
      const x = tf.tensor4d(randn(size, 'ln-x', 3, 0.5), shape);
      const w = tf.tensor1d(randn(12, 'ln-w', 0.3, 1));
      const b = tf.tensor1d(randn(12, 'ln-b', 0.2));
      expect(await kernelsOf(() => layerNorm(x, w, b))).to.deep.equal([LAYER_NORM_KERNEL]);
      for (const eps of [1e-6, 1e-12]) {
        const got = tf.tidy(() => layerNorm(x, w, b, eps).dataSync());
        const want = tf.tidy(() => layerNormComposite(x, w, b, eps).dataSync());
        expectClose(got, want, 2e-6 * maxAbs(want), 0);
      }
      const pooled = tf.tensor2d(randn(3 * 768, 'ln-pooled', 2), [3, 768]);
      const w768 = tf.ones([768]) as tf.Tensor1D;
      const b768 = tf.zeros([768]) as tf.Tensor1D;
      const got = tf.tidy(() => layerNorm(pooled, w768, b768).dataSync());
      const want = tf.tidy(() => layerNormComposite(pooled, w768, b768).dataSync());
      expectClose(got, want, 2e-6 * maxAbs(want), 0);
      // A constant row: centred values are exactly 0, so the output is exactly the bias.
      const flat = tf.tidy(() => layerNorm(tf.fill([1, 12], 7.25), w, b).dataSync());
      expectClose(flat, b.dataSync(), 0, 0);
      tf.dispose([x, w, b, pooled, w768, b768]);
    });

    it('falls back to the composite when C % 4 != 0', async () => {
      const x = tf.tensor2d(randn(18, 'ln-6'), [3, 6]);
      const w = tf.ones([6]) as tf.Tensor1D;
      const b = tf.zeros([6]) as tf.Tensor1D;
      expect(await kernelsOf(() => layerNorm(x, w, b)))
        .to.include('Mean')
        .and.not.include(LAYER_NORM_KERNEL);
      tf.dispose([x, w, b]);
    });

    it('has the composite gradients for x, weight and bias', () => {
      const x = tf.tensor4d(randn(size, 'ln-gx', 2, 0.3), shape);
      const w = tf.tensor1d(randn(12, 'ln-gw', 0.3, 1));
      const b = tf.tensor1d(randn(12, 'ln-gb', 0.2));
      const dy = tf.tensor4d(randn(size, 'ln-dy'), shape);
      const loss = (f: typeof layerNorm) => (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.mul(f(xx, ww as tf.Tensor1D, bb as tf.Tensor1D, 1e-6), dy));
      const ours = tf.tidy(() =>
        tf
          .grads(loss(layerNorm))([x, w, b])
          .map((g) => g.dataSync()),
      );
      const ref = tf.tidy(() =>
        tf
          .grads(loss(layerNormComposite))([x, w, b])
          .map((g) => g.dataSync()),
      );
      for (let i = 0; i < 3; i++) expectClose(ours[i], ref[i], 2e-5 * Math.max(1, maxAbs(ref[i])), 0);
      tf.dispose([x, w, b, dy]);
    });
  });

  it('leave no tensors behind', () => {
    const x = tf.randomNormal([4, 3, 3, 16]);
    const w = tf.ones([16]) as tf.Tensor1D;
    const b = tf.zeros([16]) as tf.Tensor1D;
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      tf.tidy(() => layerNorm(gelu(x), w, b).dataSync());
      tf.tidy(() =>
        tf
          .grads((v: tf.Tensor) => tf.sum(layerNorm(gelu(v), w, b)))([x])[0]
          .dataSync(),
      );
    }
    expect(tf.memory().numTensors).to.equal(before);
    tf.dispose([x, w, b]);
  });
});
