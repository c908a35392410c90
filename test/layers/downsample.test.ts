/** downsample: against a float64 loop reference (test/reference.ts), on cpu and wasm. */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { downsample } from '../../src/layers';
import { BACKENDS, expectClose, randn, useBackend } from '../helpers';
import { nd, refConv2d, refLayerNorm } from '../reference';

for (const backend of BACKENDS) {
  describe(`downsample [${backend}]`, () => {
    before(() => useBackend(backend));

    it('downsample = LayerNorm first, then conv 2x2/s2', () => {
      const xs = randn(2 * 5 * 6 * 4, 'ds-x');
      const lw = randn(4, 'ds-lw', 0.2, 1);
      const lb = randn(4, 'ds-lb', 0.1);
      const ws = randn(2 * 2 * 4 * 7, 'ds-w', 0.3);
      const bs = randn(7, 'ds-b', 0.1);
      const got = tf.tidy(() => {
        const y = downsample(tf.tensor4d(xs, [2, 5, 6, 4]), tf.tensor1d(lw), tf.tensor1d(lb), tf.tensor4d(ws, [2, 2, 4, 7]), tf.tensor1d(bs));
        expect(y.shape).to.deep.equal([2, 2, 3, 7]);
        return y.dataSync();
      });
      const ref = refConv2d(refLayerNorm(nd([2, 5, 6, 4], xs), lw, lb, 1e-6), nd([2, 2, 4, 7], ws), bs, 2, 0);
      expectClose(got, ref.data, 2e-5, 1e-4);
    });
  });
}
