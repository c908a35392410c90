/** linear: against a float64 loop reference (test/reference.ts), on cpu and wasm. */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { linear } from '../../src/layers';
import { ShapeError } from '../../src/errors';
import { BACKENDS, expectClose, randn, useBackend } from '../helpers';
import { nd, refLinear } from '../reference';

for (const backend of BACKENDS) {
  describe(`linear [${backend}]`, () => {
    before(() => useBackend(backend));

    it('is a matMul over the last axis of NHWC, with bias', () => {
      const xs = randn(2 * 3 * 3 * 6, 'lin-x');
      const ws = randn(6 * 10, 'lin-w', 0.4);
      const bs = randn(10, 'lin-b');
      const got = tf.tidy(() => {
        const y = linear(tf.tensor4d(xs, [2, 3, 3, 6]), tf.tensor2d(ws, [6, 10]), tf.tensor1d(bs));
        expect(y.shape).to.deep.equal([2, 3, 3, 10]);
        return y.dataSync();
      });
      expectClose(got, refLinear(nd([2, 3, 3, 6], xs), nd([6, 10], ws), bs).data, 1e-5, 1e-5);
    });

    it('has the gradients of x @ w + b (hand-written: dy w^T, x^T dy, sum dy) for x, w and b', () => {
      const x = tf.tensor4d(randn(2 * 3 * 2 * 6, 'lg-x'), [2, 3, 2, 6]);
      const w = tf.tensor2d(randn(6 * 5, 'lg-w', 0.4), [6, 5]);
      const b = tf.tensor1d(randn(5, 'lg-b'));
      const up = tf.tensor4d(randn(2 * 3 * 2 * 5, 'lg-up'), [2, 3, 2, 5]);
      const f = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(linear(xx as tf.Tensor4D, ww as tf.Tensor2D, bb as tf.Tensor1D), up));
      const ref = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.mul(tf.add(tf.reshape(tf.matMul(tf.reshape(xx, [-1, 6]), ww), [2, 3, 2, 5]), bb), up));
      const got = tf.grads(f)([x, w, b]);
      const want = tf.grads(ref)([x, w, b]);
      got.forEach((g, i) => {
        expect(g.shape).to.deep.equal(want[i].shape);
        expectClose(g.dataSync(), want[i].dataSync(), 1e-5, 1e-5);
      });
      tf.dispose([x, w, b, up, ...got, ...want]);
    });

    it('names the mismatch when the weight does not fit', () => {
      expect(() => tf.tidy(() => linear(tf.zeros([2, 5]), tf.zeros([6, 3]) as tf.Tensor2D, tf.zeros([3]) as tf.Tensor1D))).to.throw(
        ShapeError,
        /5 channels but weight is \[6,3\]/,
      );
    });
  });
}
