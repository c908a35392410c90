/** FCMAE building blocks: masks (count, order, seeding, upsampling), patchify order, norm-pix target, loss reduction, options. */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { Fcmae } from '../../src/fcmae/fcmae';
import { FcmaeError } from '../../src/errors';
import { fcmaeLoss, normPixTarget, patchify, unpatchify } from '../../src/fcmae/loss';
import { checkMask, randomMask, visibleCount, visibleMap } from '../../src/fcmae/mask';
import { maskedGrn } from '../../src/fcmae/masked_grn';
import { grn } from '../../src/layers/grn';
import { expectNoLeak, onBackend, randn } from '../helpers';

describe('FCMAE masks, patchify and loss', () => {
  onBackend('cpu');

  it('randomMask: int(L(1-ratio)) visible per image, seeded, independent rows', () => {
    expect(visibleCount(49, 0.6)).to.equal(19); // int(19.6)
    const m = randomMask(8, 49, 0.6, 3);
    for (let b = 0; b < 8; b++) expect(m.data.slice(b * 49, (b + 1) * 49).reduce((a, v) => a + v, 0)).to.equal(30);
    expect(Array.from(randomMask(8, 49, 0.6, 3).data)).to.deep.equal(Array.from(m.data));
    expect(Array.from(randomMask(8, 49, 0.6, 4).data)).to.not.deep.equal(Array.from(m.data));
    expect(Array.from(m.data.slice(0, 49))).to.not.deep.equal(Array.from(m.data.slice(49, 98)));
    expect(() => randomMask(1, 48, 0.6, 0)).to.throw(FcmaeError, /not a square/);
    expect(() => randomMask(1, 49, 1, 0)).to.throw(FcmaeError, /\[0, 1\)/);
  });

  it('visibleMap: nearest block upsampling, patch l = i*(W/32)+j, 1 = visible', () => {
    const m = { n: 1, l: 4, data: Float32Array.from([0, 1, 1, 0]) };
    const v = visibleMap(m, 2);
    expect(v.shape).to.deep.equal([1, 4, 4, 1]);
    expect(Array.from(v.dataSync())).to.deep.equal([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1]);
    v.dispose();
    expect(() => checkMask(m, 1, 64, 96)).to.throw(FcmaeError, /square/);
    expect(() => checkMask(m, 2, 64, 64)).to.throw(FcmaeError, /\[2, 4\]/);
    expect(() => checkMask({ ...m, data: Float32Array.from([0, 0.5, 1, 0]) }, 1, 64, 64)).to.throw(FcmaeError, /0 \(visible\) or 1/);
  });

  it('patchify: flat index (row*p + col)*3 + channel inside patch i*(W/p)+j; unpatchify inverts it', () => {
    const [n, h, w] = [2, 64, 96];
    const x = tf.tensor4d(randn(n * h * w * 3, 'pf'), [n, h, w, 3]);
    const p = patchify(x);
    expect(p.shape).to.deep.equal([n, 6, 3072]);
    const xd = x.dataSync();
    const pd = p.dataSync();
    for (const [b, i, j, r, c, ch] of [
      [1, 1, 2, 5, 31, 2],
      [0, 0, 1, 31, 0, 1],
      [1, 0, 0, 0, 0, 0],
    ]) {
      const l = i * (w / 32) + j;
      expect(pd[(b * 6 + l) * 3072 + (r * 32 + c) * 3 + ch]).to.equal(xd[((b * h + i * 32 + r) * w + j * 32 + c) * 3 + ch]);
    }
    const sq = tf.tensor4d(randn(64 * 64 * 3, 'sq'), [1, 64, 64, 3]);
    const back = unpatchify(patchify(sq));
    expect(Array.from(back.dataSync())).to.deep.equal(Array.from(sq.dataSync()));
    tf.dispose([x, p, sq, back]);
  });

  it('norm-pix target uses the unbiased per-patch variance and eps 1e-6', () => {
    const t = tf.tensor3d([[[1, 2, 3, 4]]]);
    const y = normPixTarget(t).dataSync();
    const sd = Math.sqrt(5 / 3 + 1e-6); // unbiased var of 1..4 = 5/3 (biased would be 5/4)
    expect(y[0]).to.be.closeTo(-1.5 / sd, 1e-6);
    expect(y[3]).to.be.closeTo(1.5 / sd, 1e-6);
    t.dispose();
  });

  it('the loss counts masked patches only, each with equal weight', () => {
    const x = tf.tensor4d(randn(2 * 64 * 64 * 3, 'lx'), [2, 64, 64, 3]);
    const target = normPixTarget(patchify(x));
    const mask = tf.tensor2d([
      [1, 0, 0, 1],
      [0, 0, 0, 1],
    ]);
    // pred = target + 1 at masked patches, target + 5 at visible ones: loss must be exactly 1
    const off = tf.tensor3d([
      [[1], [5], [5], [1]],
      [[5], [5], [5], [1]],
    ]);
    const pred = tf.add(target, off) as tf.Tensor3D;
    expect(fcmaeLoss(x, pred, mask).dataSync()[0]).to.be.closeTo(1, 1e-5);
    tf.dispose([x, target, mask, off, pred]);
  });

  it('masked GRN: with every site visible it is the dense GRN; a masked site does not move the statistics', () => {
    const x = tf.tensor4d(randn(2 * 4 * 4 * 8, 'g'), [2, 4, 4, 8]);
    const gamma = tf.tensor1d(randn(8, 'gg', 0.5));
    const beta = tf.tensor1d(randn(8, 'gb', 0.5));
    const all = tf.ones([2, 4, 4, 1]) as tf.Tensor4D;
    const a = maskedGrn(x, all, gamma, beta).dataSync();
    const b = grn(x, gamma, beta).dataSync();
    for (let i = 0; i < a.length; i++) expect(a[i]).to.be.closeTo(b[i], 1e-5 * Math.max(1, Math.abs(b[i])));
    const vis = tf.tensor4d(
      Float32Array.from({ length: 32 }, (_, i) => (i % 5 === 0 ? 0 : 1)),
      [2, 4, 4, 1],
    );
    const x2 = tf.add(x, tf.mul(tf.sub(1, vis), 50)) as tf.Tensor4D;
    const y1 = tf.mul(maskedGrn(x, vis, gamma, beta), vis).dataSync();
    const y2 = tf.mul(maskedGrn(x2, vis, gamma, beta), vis).dataSync();
    expect(Array.from(y2, (v) => v + 0)).to.deep.equal(Array.from(y1, (v) => v + 0)); // +0: masked sites are 0 or -0
    tf.dispose([x, gamma, beta, all, vis, x2]);
  });

  it('Fcmae: options are checked, forward leaks no tensors, init is seeded', () => {
    expect(() => new Fcmae('convnext_atto')).to.throw(/V2/);
    expect(() => new Fcmae({ version: 2, depths: [1, 1, 1, 1], dims: [8, 8, 8, 8] }, { maskRatio: 1 })).to.throw(FcmaeError);
    const cfg = { version: 2 as const, depths: [1, 1, 1, 1] as [number, number, number, number], dims: [8, 8, 8, 8] as [number, number, number, number] };
    const f = new Fcmae(cfg, { decoderDim: 8, seed: 1 });
    const g = new Fcmae(cfg, { decoderDim: 8, seed: 1 });
    expect(Array.from(f.parameters().get('pred.weight')!.dataSync())).to.deep.equal(Array.from(g.parameters().get('pred.weight')!.dataSync()));
    // official init: std 1 trunc-normal (|w| <= 2) on pred, 0.02 on downsample convs, GRN 0
    const pw = f.parameters().get('pred.weight')!.dataSync() as Float32Array;
    const sd = Math.sqrt(pw.reduce((a, v) => a + v * v, 0) / pw.length);
    expect(sd).to.be.within(0.8, 0.95); // std of N(0,1) truncated at +-2 is 0.88
    expect(Math.max(...Array.from(pw).map(Math.abs))).to.be.at.most(2);
    expect(Array.from(f.parameters().get('stages.0.blocks.0.mlp.grn.weight')!.dataSync()).every((v) => v === 0)).to.equal(true);
    const x = tf.tensor4d(randn(2 * 64 * 64 * 3, 'fx'), [2, 64, 64, 3]);
    const m = f.randomMask(2, 64, 5);
    expectNoLeak(() => f.loss(x, m).dispose());
    expect(() => f.forward(x, { n: 2, l: 9, data: new Float32Array(18) })).to.throw(FcmaeError, /mask must be \[2, 4\]/);
    tf.dispose(x);
    f.dispose();
    g.dispose();
  });
});
