/**
 * scaledResidual (x + gamma * y, the end of a V1 block in eval): on wasm one SIMD kernel with the
 * composite's bits, elsewhere (and for shapes the kernel does not take) the composite; against a
 * float64 loop on cpu and wasm; the composite's gradients; and the block's eval forward, which runs
 * it, gives the bits of its training path (layerScale, then the sum) with drop path off.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { BlockOptions, ConvNeXtBlock } from '../../src/blocks';
import { SCALED_RESIDUAL_KERNEL } from '../../src/kernel_names';
import { scaledResidual, scaledResidualComposite } from '../../src/layers/scaled_residual';
import { ParamStore } from '../../src/model';
import { BACKENDS, expectClose, expectNoLeak, maxAbs, randn, useBackend } from '../helpers';
import { sameBits } from '../backend/kernel_cases';

async function kernelsOf(f: () => tf.Tensor): Promise<string[]> {
  const info = await tf.profile(() => tf.tidy(f));
  return [...new Set(info.kernels.map((k) => k.name))];
}

const SHAPE: [number, number, number, number] = [2, 5, 7, 40]; // C = 40: a 16-float loop and a vector tail per row
const SIZE = 2 * 5 * 7 * 40;

for (const backend of BACKENDS) {
  describe(`scaledResidual [${backend}]`, () => {
    before(() => useBackend(backend));

    it(`is x + gamma * y per channel (${backend === 'wasm' ? 'one kernel, the bits of the composite' : 'the composite'})`, async () => {
      const xs = randn(SIZE, 'sr-x');
      const ys = randn(SIZE, 'sr-y', 3);
      const gs = randn(40, 'sr-g', 0.5);
      const [x, y, gamma] = [tf.tensor4d(xs, SHAPE), tf.tensor4d(ys, SHAPE), tf.tensor1d(gs)];
      const kernels = await kernelsOf(() => scaledResidual(x, y, gamma));
      if (backend === 'wasm') expect(kernels).to.deep.equal([SCALED_RESIDUAL_KERNEL]);
      else expect(kernels).to.have.members(['Multiply', 'Add']);
      const got = tf.tidy(() => scaledResidual(x, y, gamma).dataSync() as Float32Array);
      const composite = tf.tidy(() => scaledResidualComposite(x, y, gamma).dataSync() as Float32Array);
      expect(sameBits(got, composite)).to.equal(true);
      const ref = Array.from(xs, (v, i) => v + gs[i % 40] * ys[i]);
      expectClose(got, ref, 1e-6, 1e-6);
      expectNoLeak(() => scaledResidual(x, y, gamma).dispose());
      tf.dispose([x, y, gamma]);
    });

    it('falls back to the composite when C % 4 != 0', async () => {
      const [x, y] = [tf.tensor2d(randn(18, 'sr6x'), [3, 6]), tf.tensor2d(randn(18, 'sr6y'), [3, 6])];
      const gamma = tf.tensor1d(randn(6, 'sr6g'));
      expect(await kernelsOf(() => scaledResidual(x, y, gamma))).to.have.members(['Multiply', 'Add']);
      tf.dispose([x, y, gamma]);
    });

    it('has the composite gradients for x, y and gamma', () => {
      const [x, y] = [tf.tensor4d(randn(SIZE, 'sr-gx'), SHAPE), tf.tensor4d(randn(SIZE, 'sr-gy'), SHAPE)];
      const gamma = tf.tensor1d(randn(40, 'sr-gg', 0.5));
      const dz = tf.tensor4d(randn(SIZE, 'sr-dz'), SHAPE);
      const loss = (f: typeof scaledResidual) => (a: tf.Tensor, b: tf.Tensor, g: tf.Tensor) => tf.sum(tf.mul(f(a, b, g as tf.Tensor1D), dz));
      const ours = tf.tidy(() =>
        tf
          .grads(loss(scaledResidual))([x, y, gamma])
          .map((g) => g.dataSync() as Float32Array),
      );
      const ref = tf.tidy(() =>
        tf
          .grads(loss(scaledResidualComposite))([x, y, gamma])
          .map((g) => g.dataSync() as Float32Array),
      );
      for (let i = 0; i < 3; i++) expectClose(ours[i], ref[i], 1e-6 * Math.max(1, maxAbs(ref[i])), 0);
      tf.dispose([x, y, gamma, dz]);
    });

    it("gives a V1 block's eval forward the bits of its training path with drop path off", () => {
      const opts: BlockOptions = { dim: 16, kernelSize: 7, mlpRatio: 4, layerScaleInit: 1e-6, useGrn: false, lnEps: 1e-6, dropPathRate: 0 };
      const store = new ParamStore(1);
      for (const p of ConvNeXtBlock.params('b', opts)) store.add(p);
      const block = new ConvNeXtBlock(store, 'b', opts);
      for (const name of store.names()) {
        const v = store.get(name);
        v.assign(tf.tensor(randn(v.size, `srb/${name}`, name.endsWith('gamma') ? 0.5 : 0.3, name.endsWith('norm.weight') ? 1 : 0), v.shape));
      }
      const x = tf.tensor4d(randn(2 * 6 * 5 * 16, 'srb-x'), [2, 6, 5, 16]);
      const evalOut = tf.tidy(() => block.apply(x, { training: false }).dataSync() as Float32Array);
      const trainOut = tf.tidy(() => block.apply(x, { training: true }).dataSync() as Float32Array);
      expect(sameBits(evalOut, trainOut)).to.equal(true);
      x.dispose();
      store.dispose();
    });
  });
}
