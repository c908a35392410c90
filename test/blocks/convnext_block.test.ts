import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { BlockOptions, ConvNeXtBlock } from '../../src/blocks';
import { ParamStore } from '../../src/model';
import { BACKENDS, expectClose, expectNoLeak, randn, useBackend } from '../helpers';
import { nd, refBlock, RefWeights } from '../reference';

function makeBlock(store: ParamStore, opts: BlockOptions): ConvNeXtBlock {
  for (const p of ConvNeXtBlock.params('b', opts)) store.add(p);
  return new ConvNeXtBlock(store, 'b', opts);
}

function randomise(store: ParamStore, seed: string): RefWeights {
  const W: RefWeights = new Map();
  for (const name of store.names()) {
    const v = store.get(name);
    const isScale = name.endsWith('norm.weight');
    const data = randn(v.size, `${seed}/${name}`, name.endsWith('gamma') ? 0.5 : isScale ? 0.2 : 0.3, isScale ? 1 : 0);
    v.assign(tf.tensor(data, v.shape));
    W.set(name, nd(v.shape, data));
  }
  return W;
}

for (const backend of BACKENDS) {
  describe(`ConvNeXtBlock [${backend}]`, () => {
    before(() => useBackend(backend));

    for (const version of [1, 2] as const) {
      it(`V${version} block matches the loop reference with non-trivial weights`, () => {
        const store = new ParamStore(1);
        const block = makeBlock(store, {
          dim: 6,
          kernelSize: 7,
          mlpRatio: 4,
          layerScaleInit: version === 1 ? 1e-6 : null,
          useGrn: version === 2,
          lnEps: 1e-6,
          dropPathRate: 0.5,
        });
        const names = store.names();
        expect(names.includes('b.gamma')).to.equal(version === 1);
        expect(names.includes('b.mlp.grn.weight')).to.equal(version === 2);
        const W = randomise(store, `block-v${version}`);
        const xs = randn(2 * 5 * 4 * 6, `bx${version}`);
        const x = tf.tensor4d(xs, [2, 5, 4, 6]);
        // Inference: drop path (rate .5 here) must be inactive.
        const got = tf.tidy(() => block.apply(x, { training: false }).dataSync());
        const ref = refBlock(nd([2, 5, 4, 6], xs), W, 'b');
        expectClose(got, ref.data, 1e-4, 1e-4);
        // The residual branch is substantial: the output is far from the input.
        const branch = ref.data.reduce((a, v, i) => a + (v - xs[i]) ** 2, 0);
        expect(Math.sqrt(branch / xs.length)).to.be.greaterThan(0.1);
        expectNoLeak(() => block.apply(x, { training: false }).dispose());
        x.dispose();
        store.dispose();
      });
    }

    it("training with drop path keeps or drops each sample's whole branch", () => {
      const store = new ParamStore(2);
      const block = makeBlock(store, {
        dim: 4,
        kernelSize: 7,
        mlpRatio: 4,
        layerScaleInit: 1,
        useGrn: false,
        lnEps: 1e-6,
        dropPathRate: 0.5,
      });
      const x = tf.randomNormal([64, 3, 3, 4], 0, 1, 'float32', 3) as tf.Tensor4D;
      const evalOut = block.apply(x, { training: false });
      const trainOut = block.apply(x, { training: true, seed: 11 });
      const xd = x.dataSync();
      const ed = evalOut.dataSync();
      const td = trainOut.dataSync();
      let dropped = 0;
      for (let s = 0; s < 64; s++) {
        const sl = (a: ArrayLike<number>) => Array.from(a).slice(s * 36, (s + 1) * 36);
        const isDropped = sl(td).every((v, i) => v === sl(xd)[i]);
        if (isDropped) dropped++;
        else
          expectClose(
            sl(td),
            sl(ed).map((v, i) => sl(xd)[i] + 2 * (v - sl(xd)[i])),
            1e-4,
            1e-4,
          ); // branch scaled by 1/(1-.5)
      }
      expect(dropped).to.be.within(12, 52);
      tf.dispose([x, evalOut, trainOut]);
      store.dispose();
    });
  });
}
