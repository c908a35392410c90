/** Every layer frees what it allocates: the tensor count is unchanged over repeated calls, on cpu and wasm. */
import * as tf from '@tensorflow/tfjs-core';
import { gelu, grn, layerNorm, layerScale } from '../../src/layers';
import { BACKENDS, expectNoLeak, useBackend } from '../helpers';

for (const backend of BACKENDS) {
  describe(`layers free their tensors [${backend}]`, () => {
    before(() => useBackend(backend));

    it('no layer leaks tensors', () => {
      const x = tf.randomNormal([1, 8, 8, 4]) as tf.Tensor4D;
      const w1 = tf.ones([4]) as tf.Tensor1D;
      const b1 = tf.zeros([4]) as tf.Tensor1D;
      expectNoLeak(() => {
        for (let i = 0; i < 3; i++) {
          tf.dispose([layerNorm(x, w1, b1), gelu(x), grn(x, w1, b1), layerScale(x, w1)]);
        }
      });
      tf.dispose([x, w1, b1]);
    });
  });
}
