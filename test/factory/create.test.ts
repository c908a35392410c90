/** createModel: architectures, tags, configs, given weights, pretrained (via loadModel), refusals. */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { ConfigError, ZooError } from '../../src/errors';
import { createModel } from '../../src/factory';
import { onBackend } from '../helpers';

describe('createModel', () => {
  onBackend('cpu');

  it('builds an architecture, a tag (its head size) and a custom config', () => {
    const a = createModel('convnext_atto', { numClasses: 7 });
    const t = createModel('convnext_tiny.fb_in22k', { init: 'zeros' });
    const c = createModel({ version: 2, depths: [1, 1, 1, 1], dims: [8, 16, 24, 32], numClasses: 3 });
    try {
      expect(a.numClasses).to.equal(7);
      expect(a.config.name).to.equal('convnext_atto');
      expect(t.numClasses).to.equal(21841);
      expect(t.config.dims).to.deep.equal([96, 192, 384, 768]);
      expect(c.config.version).to.equal(2);
      expect(c.numClasses).to.equal(3);
    } finally {
      [a, t, c].forEach((m) => m.dispose());
    }
  });

  it('takes weights (names and shapes checked) and equals the source model', () => {
    const src = createModel('convnext_atto', { numClasses: 5, seed: 3 });
    const weights = new Map([...src.getWeights()].map(([k, v]) => [k, v.clone() as tf.Tensor]));
    const m = createModel('convnext_atto', { numClasses: 5, weights });
    tf.dispose([...weights.values()]);
    try {
      const x = tf.randomNormal([1, 32, 32, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
      const [a, b] = [src.forward(x), m.forward(x)];
      expect(Array.from(b.dataSync())).to.deep.equal(Array.from(a.dataSync()));
      tf.dispose([x, a, b]);
      const bad = new Map([['stem.0.weight', tf.zeros([1])]]);
      expect(() => createModel('convnext_atto', { weights: bad })).to.throw(/stem\.0\.weight/);
      tf.dispose([...bad.values()]);
    } finally {
      src.dispose();
      m.dispose();
    }
  });

  it('pretrained goes through loadModel (offline: the cache miss says so); paths are refused', async () => {
    const p = createModel('convnext_tiny', { pretrained: true, load: { offline: true, cacheDir: '/nonexistent-convnext-cache' } });
    expect(p).to.be.instanceOf(Promise);
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ZooError);
    expect((err as Error).message).to.match(/convnext_tiny\.\w+ is not in the cache and offline mode is on/);
    expect(() => createModel('models/x')).to.throw(ConfigError, /use loadModel\('models\/x'\)/);
    expect(() => createModel('convnext_atto', { init: 'zeros', weights: new Map() })).to.throw(ConfigError, /exclude/);
  });
});
