/** depthwiseConv: against a float64 loop reference (test/reference.ts), on cpu and wasm. */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { depthwiseConv } from '../../src/layers';
import { ShapeError } from '../../src/errors';
import { BACKENDS, expectClose, randn, useBackend } from '../helpers';
import { nd, refDepthwise } from '../reference';

for (const backend of BACKENDS) {
  describe(`depthwiseConv [${backend}]`, () => {
    before(() => useBackend(backend));

    it('matches a loop reference with zero padding 3 (7x7, stride 1)', () => {
      const xs = randn(2 * 9 * 8 * 5, 'dw-x');
      const ws = randn(7 * 7 * 5, 'dw-w', 0.2);
      const bs = randn(5, 'dw-b', 0.1);
      const got = tf.tidy(() => depthwiseConv(tf.tensor4d(xs, [2, 9, 8, 5]), tf.tensor4d(ws, [7, 7, 5, 1]), tf.tensor1d(bs)).dataSync());
      expectClose(got, refDepthwise(nd([2, 9, 8, 5], xs), nd([7, 7, 5, 1], ws), bs).data, 1e-5, 1e-5);
    });

    it('rejects a weight that is not [k, k, C, 1]', () => {
      const x = tf.zeros([1, 8, 8, 4]) as tf.Tensor4D;
      expect(() => depthwiseConv(x, tf.zeros([7, 7, 3, 1]) as tf.Tensor4D, tf.zeros([3]) as tf.Tensor1D)).to.throw(ShapeError, /\[k, k, C, 1\]/);
      tf.disposeVariables();
      x.dispose();
    });
  });
}
