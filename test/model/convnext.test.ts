/** The ConvNeXt model (src/model/convnext.ts): every registered config builds and runs, forward/features/head, weights, leaks, backends agree. */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { OFFICIAL_PARAMS } from '../reference';
import { ConfigError, ShapeError, WeightsError } from '../../src/errors';
import { ConvNeXt, countParams, listModels } from '../../src/model';
import { createModel } from '../../src/factory';
import { BACKENDS, expectClose, expectNoLeak, maxAbs, useBackend } from '../helpers';
import { nd, refModel } from '../reference';
import { assignWeights, randomWeights, toNd } from '../random_weights';

const TINY = {
  version: 1 as const,
  depths: [1, 1, 2, 1] as [number, number, number, number],
  dims: [8, 16, 24, 32] as [number, number, number, number],
  numClasses: 10,
};

describe('every registered config builds and runs', function () {
  this.timeout(600_000);
  for (const name of listModels()) {
    it(`${name}: forward, stages, features and exact parameter count`, async () => {
      // ConvNeXt-V2-huge's 2.6 GB of weights exceed the wasm address space: it runs on cpu.
      await useBackend(name === 'convnextv2_huge' ? 'cpu' : 'wasm');
      const m = createModel(name);
      try {
        const c = m.config;
        expect(m.numParams()).to.equal(countParams(c));
        if (OFFICIAL_PARAMS[name]) expect(m.numParams()).to.equal(OFFICIAL_PARAMS[name]);
        // One pass for everything (huge runs on the slow cpu backend): stages, then the head on the last.
        const size = name === 'convnextv2_huge' ? 32 : 64;
        const x = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
        const stages = m.forwardStages(x);
        expect(stages.map((s) => s.shape)).to.deep.equal(c.dims.map((d, i) => [2, size / (4 * 2 ** i), size / (4 * 2 ** i), d]));
        expect(m.featureInfo.map((f) => [f.numChs, f.reduction])).to.deep.equal(c.dims.map((d, i) => [d, 4 * 2 ** i]));
        const logits = m.forwardHead(stages[3]);
        expect(logits.shape).to.deep.equal([2, 1000]);
        expect(Number.isFinite(maxAbs(logits.dataSync()))).to.equal(true);
        const emb = m.forwardHead(stages[3], { preLogits: true });
        expect(emb.shape).to.deep.equal([2, c.dims[3]]);
        tf.dispose([x, logits, emb, ...stages]);
      } finally {
        m.dispose();
      }
    });
  }
});

for (const backend of BACKENDS) {
  describe(`ConvNeXt model [${backend}]`, () => {
    let model: ConvNeXt;
    before(async () => {
      await useBackend(backend);
      model = createModel(TINY, { seed: 5 });
    });
    after(() => model.dispose());

    for (const version of [1, 2] as const) {
      it(`V${version}: logits, stages and pre-logits match the loop reference on non-trivial weights`, () => {
        const m = createModel({ ...TINY, version });
        const W = randomWeights(m, `model-v${version}`);
        assignWeights(m, W);
        const x = tf.randomNormal([2, 40, 36, 3], 0, 1, 'float32', 9) as tf.Tensor4D;
        const ref = refModel(toNd(x), W, TINY.depths);
        const logits = m.forward(x);
        const tol = 1e-4 * Math.max(1, maxAbs(ref.logits!.data));
        expectClose(logits.dataSync(), ref.logits!.data, tol, 0);
        const stages = m.forwardStages(x);
        stages.forEach((s, i) => {
          expect(s.shape).to.deep.equal(ref.stages[i].shape);
          expectClose(s.dataSync(), ref.stages[i].data, 1e-4 * Math.max(1, maxAbs(ref.stages[i].data)), 0);
        });
        const emb = m.embed(x);
        expectClose(emb.dataSync(), ref.preLogits.data, 1e-4, 1e-4);
        tf.dispose([x, logits, emb, ...stages]);
        m.dispose();
      });
    }

    it('forward = forwardHead(forwardFeatures) and the last stage = forwardFeatures', () => {
      const x = tf.randomNormal([1, 32, 32, 3]) as tf.Tensor4D;
      const f = model.forwardFeatures(x);
      const a = model.forward(x);
      const b = model.forwardHead(f);
      const st = model.forwardStages(x);
      expectClose(a.dataSync(), b.dataSync(), 0, 0);
      expectClose(st[3].dataSync(), f.dataSync(), 0, 0);
      tf.dispose([x, f, a, b, ...st]);
    });

    it('does not leak tensors over repeated forward, stages, embed and head calls', () => {
      const x = tf.randomNormal([2, 32, 32, 3]) as tf.Tensor4D;
      model.forward(x).dispose(); // warm-up
      expectNoLeak(() => {
        for (let i = 0; i < 5; i++) {
          model.forward(x).dispose();
          model.forward(x, { training: true }).dispose();
          tf.dispose(model.forwardStages(x));
          model.embed(x).dispose();
        }
      });
      x.dispose();
    });

    it('rejects bad inputs with a message naming the problem', () => {
      const nchw = tf.zeros([1, 3, 64, 64]) as tf.Tensor4D;
      const small = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
      const rank3 = tf.zeros([64, 64, 3]);
      expectNoLeak(() => {
        expect(() => model.forward(nchw)).to.throw(ShapeError, /looks like NCHW/);
        expect(() => model.forward(small)).to.throw(ShapeError, /at least 32x32/);
        expect(() => model.forward(rank3 as unknown as tf.Tensor4D)).to.throw(ShapeError, /rank 3/);
      });
      tf.dispose([nchw, small, rank3]);
    });

    it('seeded init is deterministic; weights follow the official init', () => {
      const a = createModel(TINY, { seed: 3 });
      const b = createModel(TINY, { seed: 3 });
      const c = createModel(TINY, { seed: 4 });
      const wa = a.getWeights();
      const fc1 = wa.get('stages.2.blocks.1.mlp.fc1.weight')!.dataSync();
      expect(Array.from(fc1)).to.deep.equal(Array.from(b.getWeights().get('stages.2.blocks.1.mlp.fc1.weight')!.dataSync()));
      expect(Array.from(fc1)).to.not.deep.equal(Array.from(c.getWeights().get('stages.2.blocks.1.mlp.fc1.weight')!.dataSync()));
      const std = Math.sqrt(Array.from(fc1).reduce((s, v) => s + v * v, 0) / fc1.length);
      expect(std).to.be.closeTo(0.02, 0.004);
      expect(Array.from(wa.get('stages.0.blocks.0.gamma')!.dataSync()).every((v) => Math.abs(v - 1e-6) < 1e-12)).to.equal(true);
      expect(maxAbs(wa.get('stages.1.downsample.conv.bias')!.dataSync())).to.equal(0);
      expect(Array.from(wa.get('head.norm.weight')!.dataSync()).every((v) => v === 1)).to.equal(true);
      [a, b, c].forEach((m) => m.dispose());
      const v2 = createModel({ ...TINY, version: 2 });
      expect(maxAbs(v2.getWeights().get('stages.3.blocks.0.mlp.grn.weight')!.dataSync())).to.equal(0);
      v2.dispose();
    });

    it('loadWeights reports missing, unexpected and mis-shaped names and assigns nothing then', () => {
      const m = createModel(TINY);
      const before = Array.from(m.getWeights().get('stem.conv.bias')!.dataSync());
      const good = new Map([...m.getWeights()].map(([k, v]) => [k, tf.onesLike(v) as tf.Tensor]));
      const bad = new Map(good);
      bad.delete('head.fc.bias');
      bad.set('head.extra', tf.zeros([3]));
      bad.set('stem.conv.bias', tf.zeros([9]));
      try {
        m.loadWeights(bad);
        expect.fail('should throw');
      } catch (e) {
        expect(e).to.be.instanceOf(WeightsError);
        const w = e as WeightsError;
        expect(w.missing).to.deep.equal(['head.fc.bias']);
        expect(w.unexpected).to.deep.equal(['head.extra']);
        expect(w.mismatched[0]).to.match(/stem\.conv\.bias: \[9\] vs model \[8\]/);
        expect(w.message).to.match(/missing 1: head\.fc\.bias/);
      }
      expect(Array.from(m.getWeights().get('stem.conv.bias')!.dataSync())).to.deep.equal(before);
      m.loadWeights(good);
      expect(Array.from(m.getWeights().get('stem.conv.bias')!.dataSync()).every((v) => v === 1)).to.equal(true);
      tf.dispose([...good.values(), bad.get('head.extra')!, bad.get('stem.conv.bias')!]);
      m.dispose();
    });

    it('resetClassifier replaces the head for a new class count (0 = embedding model)', () => {
      const m = createModel(TINY);
      const x = tf.randomNormal([2, 32, 32, 3]) as tf.Tensor4D;
      const embBefore = m.embed(x);
      m.resetClassifier(3);
      expect(m.numClasses).to.equal(3);
      expect(m.config.numClasses).to.equal(3);
      expect(m.numParams()).to.equal(countParams({ ...m.config, numClasses: 3 }));
      const y = m.forward(x);
      expect(y.shape).to.deep.equal([2, 3]);
      const embAfter = m.embed(x);
      expectClose(embAfter.dataSync(), embBefore.dataSync(), 0, 0);
      m.resetClassifier(0);
      const z = m.forward(x);
      expect(z.shape).to.deep.equal([2, 32]);
      expect(() => m.resetClassifier(-2)).to.throw(ConfigError);
      tf.dispose([x, y, z, embBefore, embAfter]);
      m.dispose();
    });

    it('drop path makes training passes stochastic and leaves inference deterministic', () => {
      const m = createModel({ ...TINY, dropPathRate: 0.5 });
      assignWeights(m, randomWeights(m, 'dp'));
      const x = tf.randomNormal([4, 32, 32, 3]) as tf.Tensor4D;
      const e1 = m.forward(x);
      const e2 = m.forward(x);
      const t1 = m.forward(x, { training: true, seed: 1 });
      const t1b = m.forward(x, { training: true, seed: 1 });
      const t2 = m.forward(x, { training: true, seed: 2 });
      expectClose(e1.dataSync(), e2.dataSync(), 0, 0);
      expectClose(t1.dataSync(), t1b.dataSync(), 0, 0);
      expect(Array.from(t1.dataSync())).to.not.deep.equal(Array.from(t2.dataSync()));
      expect(Array.from(t1.dataSync())).to.not.deep.equal(Array.from(e1.dataSync()));
      tf.dispose([x, e1, e2, t1, t1b, t2]);
      m.dispose();
    });
  });
}

describe('backends agree', () => {
  it('the same weights give the same logits on wasm and cpu (1e-4)', async () => {
    await useBackend('cpu');
    const m = createModel({ ...TINY, version: 2 });
    assignWeights(m, randomWeights(m, 'agree'));
    const x = tf.randomNormal([2, 48, 48, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    const cpu = m.forward(x);
    const cpuData = cpu.dataSync().slice();
    const cpuStages = m.forwardStages(x).map((t) => {
      const d = t.dataSync().slice();
      t.dispose();
      return d;
    });
    await useBackend('wasm');
    const wasm = m.forward(x);
    const tol = 1e-4 * Math.max(1, maxAbs(cpuData));
    expectClose(wasm.dataSync(), cpuData, tol, 0);
    m.forwardStages(x).forEach((t, i) => {
      expectClose(t.dataSync(), cpuStages[i], 1e-4 * Math.max(1, maxAbs(cpuStages[i])), 0);
      t.dispose();
    });
    tf.dispose([x, cpu, wasm]);
    m.dispose();
    nd([1], [0]);
  });
});
