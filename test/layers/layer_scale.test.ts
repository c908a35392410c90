/** layerScale: against a float64 loop reference (test/reference.ts), on cpu and wasm. */
import * as tf from '@tensorflow/tfjs-core';
import { layerScale } from '../../src/layers';
import { BACKENDS, expectClose, useBackend } from '../helpers';

for (const backend of BACKENDS) {
  describe(`layerScale [${backend}]`, () => {
    before(() => useBackend(backend));

    it('multiplies each channel by its gamma', () => {
      const got = tf.tidy(() =>
        layerScale(
          tf.tensor2d([
            [1, 2, 3],
            [4, 5, 6],
          ]),
          tf.tensor1d([1e-6, -2, 0.5]),
        ).dataSync(),
      );
      expectClose(got, [1e-6, -4, 1.5, 4e-6, -10, 3], 1e-12, 1e-6);
    });
  });
}
