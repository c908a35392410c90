/** layerNorm: against a float64 loop reference (test/reference.ts), on cpu and wasm. */
import * as tf from '@tensorflow/tfjs-core';
import { layerNorm } from '../../src/layers';
import { BACKENDS, expectClose, finiteDifferences, randn, useBackend } from '../helpers';
import { nd, refLayerNorm } from '../reference';

for (const backend of BACKENDS) {
  describe(`layerNorm [${backend}]`, () => {
    before(() => useBackend(backend));

    it('normalises over the last axis with biased variance and the given eps', () => {
      const shape = [2, 3, 4, 5];
      const x = randn(120, 'ln-x', 3, 1.5);
      const w = randn(5, 'ln-w', 0.3, 1);
      const b = randn(5, 'ln-b', 0.2);
      for (const eps of [1e-6, 1e-12, 0.5]) {
        const got = tf.tidy(() => layerNorm(tf.tensor4d(x, shape as [number, number, number, number]), tf.tensor1d(w), tf.tensor1d(b), eps).dataSync());
        expectClose(got, refLayerNorm(nd(shape, x), w, b, eps).data, 1e-5, 1e-5);
      }
    });

    it('uses eps: a constant row maps to bias exactly, a large eps shrinks the output', () => {
      const got = tf.tidy(() =>
        layerNorm(
          tf.tensor2d([
            [2, 2, 2, 2],
            [0, 1, 0, 1],
          ]),
          tf.ones([4]) as tf.Tensor1D,
          tf.tensor1d([0.5, 0, 0, 0]),
          1,
        ).dataSync(),
      );
      expectClose(got.slice(0, 4), [0.5, 0, 0, 0], 1e-7);
      // row 2: mean .5, var .25, eps 1 -> (+-.5)/sqrt(1.25)
      const z = 0.5 / Math.sqrt(1.25);
      expectClose(got.slice(4), [0.5 - z, z, -z, z], 1e-6);
    });

    it('has the analytic gradient (sum of outputs w.r.t. bias is the row count; w.r.t. x is ~0)', () => {
      const x = tf.tensor2d(randn(12, 'lng'), [3, 4]);
      const w = tf.tensor1d([1, 2, 3, 4]);
      const b = tf.zeros([4]) as tf.Tensor1D;
      const [gx, gb] = tf.grads((xx: tf.Tensor, bb: tf.Tensor) => tf.sum(layerNorm(xx as tf.Tensor2D, w, bb as tf.Tensor1D)))([x, b]);
      expectClose(gb.dataSync(), [3, 3, 3, 3], 1e-6);
      // d/dx sum(w * xhat) = (w - mean(w) - xhat * mean(w * xhat)) / sigma: check by finite differences.
      const f = (v: ArrayLike<number>) => tf.tidy(() => tf.sum(layerNorm(tf.tensor2d(Array.from(v), [3, 4]), w, b)).dataSync()[0]);
      expectClose(gx.dataSync(), finiteDifferences(f, Float32Array.from(x.dataSync())), 2e-3, 2e-2);
      tf.dispose([x, w, b, gx, gb]);
    });
  });
}
