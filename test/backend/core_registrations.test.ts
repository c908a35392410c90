/**
 * src/backend/core_registrations.ts: without the @tensorflow/tfjs umbrella, the package itself
 * registers tfjs-core's gradients and chained tensor methods (which tfjs-core's CommonJS entry
 * lacks), from the installed tfjs-core's own modules (scripts/build-gradients.js).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { BACKENDS, expectClose, onBackend } from '../helpers';
import { CORE_REGISTRATIONS_BUNDLE, registerCoreGradients } from '../../src/backend/core_registrations';

const CORE = path.dirname(require.resolve('@tensorflow/tfjs-core/package.json'));

describe('tfjs-core registrations without the umbrella (src/backend/core_registrations)', () => {
  it("every gradient module of the installed tfjs-core is registered (the umbrella's set)", () => {
    registerCoreGradients(); // idempotent: src/backend already ran it on import
    const kernels = fs
      .readdirSync(path.join(CORE, 'dist', 'gradients'))
      .filter((f) => f.endsWith('_grad.js'))
      .map((f) => f.slice(0, -'_grad.js'.length));
    expect(kernels.length).to.be.above(90);
    expect(kernels.filter((k) => tf.getGradient(k) == null)).to.deep.equal([]);
  });

  it('the bundle was built from this tfjs-core version', () => {
    const head = fs.readFileSync(CORE_REGISTRATIONS_BUNDLE, 'utf8').slice(0, 300);
    expect(head).to.include(`@tensorflow/tfjs-core@${tf.version_core} `);
  });

  for (const backend of BACKENDS) {
    describe(backend, () => {
      onBackend(backend);
      it("gradients have their values: d/dx sum(erf(x)) = 2/sqrt(pi) exp(-x^2); conv2d's input gradient; chained methods exist", () => {
        const before = tf.memory().numTensors;
        const xs = [-1.5, 0, 0.5, 2];
        const g = tf.tidy(() =>
          Array.from(
            tf
              .grad((x: tf.Tensor) => tf.sum(tf.erf(x)))(tf.tensor1d(xs))
              .dataSync(),
          ),
        );
        expectClose(Float32Array.from(g), Float32Array.from(xs.map((x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x))), 1e-6, 1e-5);
        // sum(conv2d(x, w)) over a 3x3 'same' conv of ones: each input pixel's gradient counts the
        // kernel taps that cover it (4 in a corner, 6 on an edge, 9 inside).
        const dx = tf.tidy(() => {
          const w = tf.ones([3, 3, 1, 1]) as tf.Tensor4D;
          return Array.from(
            tf
              .grad((x: tf.Tensor) => tf.sum(tf.conv2d(x as tf.Tensor4D, w, 1, 'same')))(tf.zeros([1, 3, 3, 1]))
              .dataSync(),
          );
        });
        expect(dx).to.deep.equal([4, 6, 4, 6, 9, 6, 4, 6, 4]);
        // Chained methods (x.square()) exist at run time as with the umbrella; tfjs-core's own types do not declare them.
        const methods = tf.Tensor.prototype as unknown as Record<string, unknown>;
        expect(['square', 'sum', 'reshape', 'matMul'].filter((m) => typeof methods[m] !== 'function')).to.deep.equal([]);
        expect(tf.memory().numTensors).to.equal(before);
      });
    });
  }
});
