/** Each layer against a float64 loop reference (test/reference.ts), on cpu and wasm. */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import {
  depthwiseConv,
  downsample,
  gelu,
  grn,
  layerNorm,
  layerScale,
  linear,
  stem,
} from '../../src/layers';
import { ShapeError } from '../../src/errors';
import { BACKENDS, expectClose, expectNoLeak, randn, useBackend } from '../helpers';
import { nd, refConv2d, refDepthwise, refGelu, refGrn, refLayerNorm, refLinear } from '../reference';

for (const backend of BACKENDS) {
  describe(`layers [${backend}]`, () => {
    before(() => useBackend(backend));

    describe('layerNorm', () => {
      it('normalises over the last axis with biased variance and the given eps', () => {
        const shape = [2, 3, 4, 5];
        const x = randn(120, 'ln-x', 3, 1.5);
        const w = randn(5, 'ln-w', 0.3, 1);
        const b = randn(5, 'ln-b', 0.2);
        for (const eps of [1e-6, 1e-12, 0.5]) {
          const got = tf.tidy(() => layerNorm(tf.tensor4d(x, shape as [number, number, number, number]), tf.tensor1d(w), tf.tensor1d(b), eps).dataSync());
          expectClose(got, refLayerNorm(nd(shape, x), w, b, eps).data, 1e-5, 1e-5);
        }
      });

      it('uses eps: a constant row maps to bias exactly, a large eps shrinks the output', () => {
        const got = tf.tidy(() =>
          layerNorm(tf.tensor2d([[2, 2, 2, 2], [0, 1, 0, 1]]), tf.ones([4]) as tf.Tensor1D, tf.tensor1d([0.5, 0, 0, 0]), 1).dataSync(),
        );
        expectClose(got.slice(0, 4), [0.5, 0, 0, 0], 1e-7);
        // row 2: mean .5, var .25, eps 1 -> (+-.5)/sqrt(1.25)
        const z = 0.5 / Math.sqrt(1.25);
        expectClose(got.slice(4), [0.5 - z, z, -z, z], 1e-6);
      });

      it('has the analytic gradient (sum of outputs w.r.t. bias is the row count; w.r.t. x is ~0)', () => {
        const x = tf.tensor2d(randn(12, 'lng'), [3, 4]);
        const w = tf.tensor1d([1, 2, 3, 4]);
        const b = tf.zeros([4]) as tf.Tensor1D;
        const [gx, gb] = tf.grads((xx: tf.Tensor, bb: tf.Tensor) => tf.sum(layerNorm(xx as tf.Tensor2D, w, bb as tf.Tensor1D)))([x, b]);
        expectClose(gb.dataSync(), [3, 3, 3, 3], 1e-6);
        // d/dx sum(w * xhat) = (w - mean(w) - xhat * mean(w * xhat)) / sigma: check by finite differences.
        const f = (v: ArrayLike<number>) => tf.tidy(() => tf.sum(layerNorm(tf.tensor2d(Array.from(v), [3, 4]), w, b)).dataSync()[0]);
        const base = Float32Array.from(x.dataSync());
        const h = 1e-2;
        const fd = Array.from(base, (_, i) => {
          const p = base.slice();
          const m = base.slice();
          p[i] += h;
          m[i] -= h;
          return (f(p) - f(m)) / (2 * h);
        });
        expectClose(gx.dataSync(), fd, 2e-3, 2e-2);
        tf.dispose([x, w, b, gx, gb]);
      });
    });

    describe('gelu', () => {
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
        const g = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(gelu(x)))(tf.tensor1d(xs)).dataSync());
        const phi = (x: number) => Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI);
        const Phi = (x: number) => (x === 0 ? 0.5 : refGelu(x) / x);
        const expected = xs.map((x) => Phi(x) + x * phi(x));
        expectClose(g, expected, 1e-5, 1e-5);
      });
    });

    describe('depthwiseConv', () => {
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

    describe('linear', () => {
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
        const ref = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(tf.add(tf.reshape(tf.matMul(tf.reshape(xx, [-1, 6]), ww), [2, 3, 2, 5]), bb), up));
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

    describe('layerScale', () => {
      it('multiplies each channel by its gamma', () => {
        const got = tf.tidy(() => layerScale(tf.tensor2d([[1, 2, 3], [4, 5, 6]]), tf.tensor1d([1e-6, -2, 0.5])).dataSync());
        expectClose(got, [1e-6, -4, 1.5, 4e-6, -10, 3], 1e-12, 1e-6);
      });
    });

    describe('grn', () => {
      it('matches the FB2 formula (L2 over H,W; divide by the channel mean)', () => {
        const xs = randn(2 * 4 * 5 * 6, 'grn-x', 1.5);
        const g = randn(6, 'grn-g', 0.5);
        const b = randn(6, 'grn-b', 0.5);
        const got = tf.tidy(() => grn(tf.tensor4d(xs, [2, 4, 5, 6]), tf.tensor1d(g), tf.tensor1d(b)).dataSync());
        expectClose(got, refGrn(nd([2, 4, 5, 6], xs), g, b).data, 1e-5, 1e-5);
      });

      it('is the identity at init (gamma = beta = 0)', () => {
        const xs = randn(1 * 3 * 3 * 4, 'grn-id');
        const got = tf.tidy(() => grn(tf.tensor4d(xs, [1, 3, 3, 4]), tf.zeros([4]) as tf.Tensor1D, tf.zeros([4]) as tf.Tensor1D).dataSync());
        expectClose(got, xs, 0, 0);
      });

      it('has gradients matching finite differences', () => {
        const shape: [number, number, number, number] = [1, 2, 3, 4];
        const xs = randn(24, 'grn-gx');
        const g = tf.tensor1d(randn(4, 'grn-gg', 0.5));
        const b = tf.tensor1d(randn(4, 'grn-gb', 0.5));
        const wsum = tf.tensor(randn(24, 'grn-w'), shape);
        const f = (v: Float32Array) => tf.tidy(() => tf.sum(tf.mul(grn(tf.tensor4d(v, shape), g, b), wsum)).dataSync()[0]);
        const gx = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(grn(x as tf.Tensor4D, g, b), wsum)))(tf.tensor4d(xs, shape)).dataSync());
        const h = 1e-2;
        const fd = Array.from(xs, (_, i) => {
          const p = xs.slice();
          const m = xs.slice();
          p[i] += h;
          m[i] -= h;
          return (f(p) - f(m)) / (2 * h);
        });
        expectClose(gx, fd, 3e-3, 2e-2);
        tf.dispose([g, b, wsum]);
      });
    });

    describe('stem and downsample', () => {
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
