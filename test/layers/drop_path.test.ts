import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { dropPath, dropPathSchedule } from '../../src/layers';
import { ConfigError } from '../../src/errors';
import { BACKENDS, expectClose, useBackend } from '../helpers';

for (const backend of BACKENDS) {
  describe(`dropPath [${backend}]`, () => {
    before(() => useBackend(backend));

    it('is the identity at inference, whatever the rate', () => {
      const x = tf.randomNormal([4, 3, 3, 2]);
      expect(dropPath(x, 0.9, false)).to.equal(x);
      expect(dropPath(x, 0, true)).to.equal(x);
      x.dispose();
    });

    it('drops whole samples and rescales survivors by 1/(1-rate) in training', () => {
      const n = 2000;
      const rate = 0.3;
      const x = tf.ones([n, 2, 2, 3]);
      const y = dropPath(x, rate, true, 1234);
      const v = y.dataSync();
      let kept = 0;
      for (let s = 0; s < n; s++) {
        const sample = v.slice(s * 12, (s + 1) * 12);
        const first = sample[0];
        // every element of a sample shares the same fate
        expect(
          sample.every((e) => e === first),
          `sample ${s} is all-or-nothing`,
        ).to.equal(true);
        if (first !== 0) {
          expect(first).to.be.closeTo(1 / (1 - rate), 1e-6);
          kept++;
        }
      }
      // Binomial(2000, 0.7): sd ~ 20.5; 5 sd bound.
      expect(kept).to.be.within(1400 - 103, 1400 + 103);
      // Expectation is preserved: mean over samples ~ 1.
      const mean = tf.tidy(() => tf.mean(y).dataSync()[0]);
      expect(mean).to.be.closeTo(1, 0.08);
      tf.dispose([x, y]);
    });

    it('is reproducible with a seed', () => {
      const x = tf.ones([64, 1, 1, 1]);
      const a = tf.tidy(() => dropPath(x, 0.5, true, 7).dataSync());
      const b = tf.tidy(() => dropPath(x, 0.5, true, 7).dataSync());
      expect(Array.from(a)).to.deep.equal(Array.from(b));
      x.dispose();
    });

    it('rejects a rate outside [0, 1)', () => {
      const x = tf.ones([2, 1]);
      expect(() => dropPath(x, 1, true)).to.throw(ConfigError, /\[0, 1\)/);
      expect(() => dropPath(x, -0.1, true)).to.throw(ConfigError);
      x.dispose();
    });
  });
}

describe('dropPathSchedule', () => {
  it('rises linearly from 0 at the first block to the rate at the last, over all stages', () => {
    const s = dropPathSchedule([3, 3, 9, 3], 0.1);
    expect(s.map((r) => r.length)).to.deep.equal([3, 3, 9, 3]);
    const flat = s.flat();
    expect(flat[0]).to.equal(0);
    expect(flat[17]).to.be.closeTo(0.1, 1e-12);
    expectClose(
      flat,
      Array.from({ length: 18 }, (_, i) => (0.1 * i) / 17),
      1e-12,
    );
  });
});
