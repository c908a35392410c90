/** grn: against a float64 loop reference (test/reference.ts), on cpu and wasm. */
import * as tf from '@tensorflow/tfjs-core';
import { grn } from '../../src/layers';
import { BACKENDS, expectClose, finiteDifferences, randn, useBackend } from '../helpers';
import { nd, refGrn } from '../reference';

for (const backend of BACKENDS) {
  describe(`grn [${backend}]`, () => {
    before(() => useBackend(backend));

    it('matches the FB2 formula (L2 over H,W; divide by the channel mean)', () => {
      const xs = randn(2 * 4 * 5 * 6, 'grn-x', 1.5);
      const g = randn(6, 'grn-g', 0.5);
      const b = randn(6, 'grn-b', 0.5);
      const got = tf.tidy(() => grn(tf.tensor4d(xs, [2, 4, 5, 6]), tf.tensor1d(g), tf.tensor1d(b)).dataSync());
      expectClose(got, refGrn(nd([2, 4, 5, 6], xs), g, b).data, 1e-5, 1e-5);
    });

    it('is the identity at init (gamma = beta = 0)', () => {
      const xs = randn(1 * 3 * 3 * 4, 'grn-id');
      const got = tf.tidy(() => grn(tf.tensor4d(xs, [1, 3, 3, 4]), tf.zeros([4]) as tf.Tensor1D, tf.zeros([4]) as tf.Tensor1D).dataSync());
      expectClose(got, xs, 0, 0);
    });

    it('has gradients matching finite differences', () => {
      const shape: [number, number, number, number] = [1, 2, 3, 4];
      const xs = randn(24, 'grn-gx');
      const g = tf.tensor1d(randn(4, 'grn-gg', 0.5));
      const b = tf.tensor1d(randn(4, 'grn-gb', 0.5));
      const wsum = tf.tensor(randn(24, 'grn-w'), shape);
      const f = (v: Float32Array) => tf.tidy(() => tf.sum(tf.mul(grn(tf.tensor4d(v, shape), g, b), wsum)).dataSync()[0]);
      const gx = tf.tidy(() =>
        tf
          .grad((x: tf.Tensor) => tf.sum(tf.mul(grn(x as tf.Tensor4D, g, b), wsum)))(tf.tensor4d(xs, shape))
          .dataSync(),
      );
      expectClose(gx, finiteDifferences(f, xs), 3e-3, 2e-2);
      tf.dispose([g, b, wsum]);
    });
  });
}
