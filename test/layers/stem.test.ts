/** stem: against a float64 loop reference (test/reference.ts), on cpu and wasm. */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { stem } from '../../src/layers';
import { BACKENDS, expectClose, randn, useBackend } from '../helpers';
import { nd, refConv2d, refLayerNorm } from '../reference';

for (const backend of BACKENDS) {
  describe(`stem [${backend}]`, () => {
    before(() => useBackend(backend));

    it('stem = conv 4x4/s4 (valid, floor) then LayerNorm', () => {
      const xs = randn(2 * 18 * 17 * 3, 'stem-x');
      const ws = randn(4 * 4 * 3 * 8, 'stem-w', 0.3);
      const bs = randn(8, 'stem-b', 0.1);
      const lw = randn(8, 'stem-lw', 0.2, 1);
      const lb = randn(8, 'stem-lb', 0.1);
      const got = tf.tidy(() => {
        const y = stem(tf.tensor4d(xs, [2, 18, 17, 3]), tf.tensor4d(ws, [4, 4, 3, 8]), tf.tensor1d(bs), tf.tensor1d(lw), tf.tensor1d(lb));
        expect(y.shape).to.deep.equal([2, 4, 4, 8]);
        return y.dataSync();
      });
      const ref = refLayerNorm(refConv2d(nd([2, 18, 17, 3], xs), nd([4, 4, 3, 8], ws), bs, 4, 0), lw, lb, 1e-6);
      expectClose(got, ref.data, 2e-5, 1e-4);
    });
  });
}
