/** gelu: against a float64 loop reference (test/reference.ts), on cpu and wasm. */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { gelu } from '../../src/layers';
import { BACKENDS, expectClose, useBackend } from '../helpers';
import { refGelu } from '../reference';

for (const backend of BACKENDS) {
  describe(`gelu [${backend}]`, () => {
    before(() => useBackend(backend));

    it('is the exact erf form, not the tanh approximation', () => {
      const xs = [-4, -3, -1, -0.5, 0, 0.5, 1, 2, 3, 5];
      const got = tf.tidy(() => gelu(tf.tensor1d(xs)).dataSync());
      expectClose(got, xs.map(refGelu), 3e-7, 1e-6);
      // PyTorch: F.gelu(torch.tensor(1.)) = 0.8413447; the tanh form gives 0.8411920.
      expect(got[6]).to.be.closeTo(0.8413447, 2e-7);
      expect(Math.abs(got[6] - 0.841192)).to.be.greaterThan(1e-4);
    });

    it('has the derivative Phi(x) + x phi(x)', () => {
      const xs = [-2, -0.3, 0, 0.7, 1.5];
      const g = tf.tidy(() =>
        tf
          .grad((x: tf.Tensor) => tf.sum(gelu(x)))(tf.tensor1d(xs))
          .dataSync(),
      );
      const phi = (x: number) => Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI);
      const Phi = (x: number) => (x === 0 ? 0.5 : refGelu(x) / x);
      const expected = xs.map((x) => Phi(x) + x * phi(x));
      expectClose(g, expected, 1e-5, 1e-5);
    });
  });
}
