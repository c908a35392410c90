/**
 * FCMAE parity with a float64 PyTorch dense-masked reference (fixtures: test/fcmae/make_fcmae_fixtures.py):
 * tiny V2 encoder + decoder with non-trivial weights, batch 2, a fixed mask, both GRN modes:
 * encoder output at visible sites (0 at masked), decoder output, loss, every gradient, and the loss
 * after one and two AdamW steps (betas 0.9/0.95, the pretraining decay groups). Plus: masked pixels
 * do not leak, no tensor leaks, the Minkowski checkpoint layout loads to the same weights.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { registerWasmTrainingKernels } from '../../src/backend/wasm_gradients';
import { fcmaeFromStateDict, fcmaeToOfficial } from '../../weights-converter/fcmae_layout';
import { Fcmae } from '../../src/fcmae/fcmae';
import { fcmaeFromWeights, loadFcmaeCheckpoint } from '../../src/fcmae/load';
import { PatchMask } from '../../src/fcmae/mask';
import { GrnStats } from '../../src/fcmae/masked_grn';
import { readNpyFloat32 } from '../../src/io/npy';
import { AdamW } from '../../src/train/adamw';
import { readSafetensors } from '../../weights-converter/safetensors';
import { RawTensor } from '../../weights-converter/types';
import { maxAbs, onBackend } from '../helpers';

const DIR = path.resolve(__dirname, '../../../test/fixtures/fcmae');

interface Meta {
  config: { mask: number[][]; decoder_dim: number; decoder_depth: number };
  optimizer: { lr: number; betas: [number, number]; eps: number; weight_decay: number };
  losses: Record<GrnStats, [number, number, number]>;
}

const meta = (): Meta => JSON.parse(fs.readFileSync(path.join(DIR, 'meta.json'), 'utf8')) as Meta;

function load(grnStats: GrnStats): Fcmae {
  return fcmaeFromWeights(fcmaeFromStateDict(readSafetensors(path.join(DIR, 'weights.safetensors')).tensors), { grnStats });
}

function input(): tf.Tensor4D {
  const a = readNpyFloat32(path.join(DIR, 'input.npy'));
  return tf.tidy(() => tf.transpose(tf.tensor4d(a.data, a.shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D);
}

function mask(): PatchMask {
  const a = readNpyFloat32(path.join(DIR, 'mask.npy'));
  return { n: a.shape[0], l: a.shape[1], data: a.data };
}

/** Reference outputs: latent NCHW -> NHWC, pred, grads mapped to our names and layouts. */
function reference(stats: GrnStats): { latent: tf.Tensor4D; pred: Float32Array | null; grads: Map<string, Float32Array> } {
  const t = readSafetensors(path.join(DIR, `out_${stats}.safetensors`)).tensors;
  const lat = t.get('latent')!;
  const latent = tf.tidy(() => tf.transpose(tf.tensor4d(lat.data as Float32Array, lat.shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D);
  const g = new Map<string, RawTensor>();
  for (const [k, v] of t) if (k.startsWith('grad.')) g.set(k.slice(5), v);
  // The layout maps are linear (renames and transposes), so gradients map exactly as weights do.
  const w = fcmaeFromStateDict(g);
  const grads = new Map([...w.encoder, ...w.decoder].map(([k, v]) => [k, v.data]));
  return { latent, pred: (t.get('pred')?.data as Float32Array | undefined) ?? null, grads };
}

/** Parity bound: 1e-4 x max(1, max|ref|) (relative for gradients: 1e-4 x max|ref| + tiny). */
function expectClose(label: string, ours: ArrayLike<number>, ref: ArrayLike<number>, bound: number): number {
  expect(ours.length, `${label} length`).to.equal(ref.length);
  let worst = 0;
  let at = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i] - ref[i]);
    if (d > worst) {
      worst = d;
      at = i;
    }
  }
  expect(worst, `${label}[${at}]: ours ${ours[at]} vs torch ${ref[at]}`).to.be.at.most(bound);
  return worst;
}

function lossAndGrads(f: Fcmae, x: tf.Tensor4D, m: PatchMask): { loss: number; grads: Map<string, tf.Tensor> } {
  const params = f.parameters();
  const byTf = new Map([...params].map(([n, v]) => [v.name, n]));
  const { value, grads } = tf.variableGrads(() => f.loss(x, m), [...params.values()]);
  const loss = value.dataSync()[0];
  value.dispose();
  return { loss, grads: new Map(Object.entries(grads).map(([n, g]) => [byTf.get(n)!, g])) };
}

for (const backend of ['wasm', 'cpu']) {
  describe(`FCMAE parity with PyTorch [${backend}]`, function () {
    this.timeout(120_000);
    onBackend(backend, registerWasmTrainingKernels);

    for (const stats of ['image', 'batch'] as GrnStats[]) {
      it(`grnStats '${stats}': encoder output, decoder output, loss, every gradient, two AdamW steps`, () => {
        const f = load(stats);
        const x = input();
        const m = mask();
        const ref = reference(stats);
        const mt = meta();
        const before = tf.memory().numTensors;
        const out = f.forward(x, m);
        // encoder: visible sites equal torch; masked sites are exactly 0 (as dense() of the sparse tensor)
        const lat = out.latent.dataSync();
        const refLat = ref.latent.dataSync();
        expectClose('latent', lat, refLat, 1e-4 * Math.max(1, maxAbs(refLat)));
        const c3 = out.latent.shape[3];
        const g = out.latent.shape[1];
        for (let n = 0; n < m.n; n++)
          for (let l = 0; l < m.l; l++)
            if (m.data[n * m.l + l] === 1) for (let c = 0; c < c3; c++) expect(lat[((n * g + Math.floor(l / g)) * g + (l % g)) * c3 + c]).to.equal(0);
        if (ref.pred) expectClose('pred', out.pred.dataSync(), ref.pred, 1e-4 * Math.max(1, maxAbs(ref.pred)));
        const loss0 = out.loss.dataSync()[0];
        expect(Math.abs(loss0 - mt.losses[stats][0]) / mt.losses[stats][0], `loss ${loss0} vs ${mt.losses[stats][0]}`).to.be.below(1e-5);
        tf.dispose([out.loss, out.pred, out.latent]);
        expect(tf.memory().numTensors, 'tensors after forward').to.equal(before);

        const { loss, grads } = lossAndGrads(f, x, m);
        expect(loss).to.be.closeTo(loss0, 1e-6 * loss0);
        expect([...grads.keys()].sort()).to.deep.equal([...ref.grads.keys()].sort());
        let worstRel = 0;
        for (const [name, gt] of grads) {
          const r = ref.grads.get(name)!;
          const scale = maxAbs(r);
          expect(scale, `${name}: reference gradient is not zero`).to.be.above(0);
          worstRel = Math.max(worstRel, expectClose(`grad ${name}`, gt.dataSync(), r, 1e-4 * scale + 1e-9) / scale);
        }
        expect(worstRel).to.be.below(1e-4);

        const o = mt.optimizer;
        const opt = new AdamW(f.parameters(), f.paramGroups(), { beta1: o.betas[0], beta2: o.betas[1], eps: o.eps, weightDecay: o.weight_decay });
        opt.apply(grads, o.lr);
        tf.dispose([...grads.values()]);
        const second = lossAndGrads(f, x, m);
        expect(Math.abs(second.loss - mt.losses[stats][1]) / mt.losses[stats][1], `loss after 1 step ${second.loss} vs ${mt.losses[stats][1]}`).to.be.below(
          1e-4,
        );
        opt.apply(second.grads, o.lr);
        tf.dispose([...second.grads.values()]);
        const l2 = f.loss(x, m);
        const loss2 = l2.dataSync()[0];
        l2.dispose();
        expect(Math.abs(loss2 - mt.losses[stats][2]) / mt.losses[stats][2], `loss after 2 steps ${loss2} vs ${mt.losses[stats][2]}`).to.be.below(1e-4);
        opt.dispose();
        expect(tf.memory().numTensors, 'tensors after training steps').to.equal(before);
        f.dispose();
        tf.dispose([x, ref.latent]);
      });
    }

    it('changing the pixels of masked patches changes nothing visible (encoder output, prediction)', () => {
      const f = load('image');
      const x = input();
      const m = mask();
      const [n, h, w] = x.shape;
      const noisy = tf.tidy(() => {
        const pix = new Float32Array(n * h * w);
        for (let b = 0; b < n; b++)
          for (let yy = 0; yy < h; yy++)
            for (let xx = 0; xx < w; xx++) pix[(b * h + yy) * w + xx] = m.data[b * m.l + Math.floor(yy / 32) * (w / 32) + Math.floor(xx / 32)];
        const pm = tf.tensor4d(pix, [n, h, w, 1]);
        return tf.add(tf.mul(x, tf.sub(1, pm)), tf.mul(tf.mul(tf.randomNormal(x.shape, 0, 100, 'float32', 7), pm), 1)) as tf.Tensor4D;
      });
      const a = f.forward(x, m);
      const b = f.forward(noisy, m);
      expect(Array.from(b.latent.dataSync())).to.deep.equal(Array.from(a.latent.dataSync()));
      expect(Array.from(b.pred.dataSync())).to.deep.equal(Array.from(a.pred.dataSync()));
      // ... while the loss (whose targets are the masked patches) does change: the test can fail.
      expect(Math.abs(b.loss.dataSync()[0] - a.loss.dataSync()[0])).to.be.above(1e-3);
      // and a visible pixel does reach the output
      const poked = tf.tidy(() => tf.add(x, tf.scatterND([[1, 0, 0, 0]], [1], x.shape)) as tf.Tensor4D);
      const c = f.forward(poked, m);
      expect(Array.from(c.latent.dataSync())).to.not.deep.equal(Array.from(a.latent.dataSync()));
      tf.dispose([a.loss, a.pred, a.latent, b.loss, b.pred, b.latent, c.loss, c.pred, c.latent, x, noisy, poked]);
      f.dispose();
    });
  });
}

describe('FCMAE checkpoint layouts', () => {
  it('the Minkowski checkpoint FB2 main_pretrain saves loads to the same weights as the dense one (kernel axes swapped)', async () => {
    const dense = fcmaeFromStateDict(readSafetensors(path.join(DIR, 'weights.safetensors')).tensors);
    const f = await loadFcmaeCheckpoint(path.join(DIR, 'fcmae_minkowski.pth'));
    const ours = f.parameters();
    const want = new Map([...dense.encoder, ...dense.decoder]);
    expect([...ours.keys()].sort()).to.deep.equal([...want.keys()].sort());
    for (const [k, v] of want) expect(Array.from(ours.get(k)!.dataSync()), k).to.deep.equal(Array.from(v.data));
    // the swap matters: these kernels are not symmetric, so reading them unswapped would differ
    const dw = want.get('stages.0.blocks.0.conv_dw.weight')!;
    const swapped = tf.tidy(() => tf.transpose(tf.tensor(dw.data, dw.shape), [1, 0, 2, 3]).dataSync());
    expect(Array.from(swapped)).to.not.deep.equal(Array.from(dw.data));
    expect(f.decoder.options).to.deep.include({ dim: meta().config.decoder_dim, depth: meta().config.decoder_depth });
    f.dispose();
  });

  it('writing the official layout and reading it back is the identity; decay groups follow timm add_weight_decay on the official shapes', () => {
    const f = load('image');
    const w = new Map([...f.parameters()].map(([k, v]) => [k, { shape: v.shape, data: v.dataSync() as Float32Array }]));
    const official = fcmaeToOfficial(w);
    expect(official.get('encoder.stages.0.0.dwconv.kernel')!.shape).to.deep.equal([49, 8]);
    expect(official.get('encoder.downsample_layers.1.1.kernel')!.shape).to.deep.equal([4, 8, 16]);
    expect(official.get('encoder.stages.0.0.grn.gamma')!.shape).to.deep.equal([1, 32]);
    expect(official.get('mask_token')!.shape).to.deep.equal([1, 4, 1, 1]);
    const raw = new Map<string, RawTensor>([...official].map(([k, v]) => [k, { shape: v.shape, dtype: 'float32', data: v.data }]));
    const back = fcmaeFromStateDict(raw);
    for (const [k, v] of [...back.encoder, ...back.decoder]) expect(Array.from(v.data), k).to.deep.equal(Array.from(w.get(k)!.data));
    const groups = f.paramGroups();
    const names = [...w.keys()];
    const officialNames = [...official.keys()];
    names.forEach((n, i) => {
      const on = officialNames[i];
      const decay = !(official.get(on)!.shape.length === 1 || on.endsWith('.bias'));
      expect(groups.get(n)!.decay, `${n} (${on})`).to.equal(decay);
    });
    expect(groups.get('mask_token')!.decay).to.equal(true);
    expect(groups.get('stages.0.blocks.0.mlp.grn.bias')!.decay).to.equal(true);
    f.dispose();
  });
});
