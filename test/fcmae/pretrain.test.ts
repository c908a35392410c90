/**
 * FCMAE pretraining runs on a tiny data set (wasm, the embedded default): exact resume, accumulation,
 * log.jsonl and the reconstruction grid, the encoder directory (loads as a numClasses-0 model) and
 * the full model in FB2's checkpoint layout (read back by our reader; torch.load reads it too).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import seedrandom from 'seedrandom';
import { registerWasmTrainingKernels } from '../../src/backend/wasm_gradients';
import { decodeImage } from '../../src/data/decode';
import { loadFcmaeCheckpoint } from '../../src/fcmae/load';
import { fcmaeFromRun, listImagesRecursive, pretrain, PretrainOptions } from '../../src/fcmae/pretrain';
import { loadModel } from '../../src/factory';
import { readSafetensors } from '../../weights-converter/safetensors';
import { encodePng } from '../../src/data/png';
import { onBackend, useTmpDir } from '../helpers';

const ARCH = {
  version: 2 as const,
  depths: [1, 1, 1, 1] as [number, number, number, number],
  dims: [8, 8, 16, 16] as [number, number, number, number],
  name: 'convnextv2_test',
};

function makeImages(dir: string, n: number): void {
  const rng = seedrandom('imgs');
  for (let i = 0; i < n; i++) {
    const w = 70 + i * 3;
    const h = 66 + i;
    const data = new Uint8Array(w * h * 3);
    const fx = 1 + (i % 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = Math.round(127 + 100 * Math.sin((fx * x) / 9 + c + i) * Math.cos(y / 7) + 20 * rng());
    const sub = path.join(dir, i % 2 ? 'a' : 'b/c');
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `img${i}.png`), encodePng({ width: w, height: h, data }));
  }
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not an image');
}

describe('FCMAE pretraining loop [wasm]', function () {
  this.timeout(300_000);
  onBackend('wasm', registerWasmTrainingKernels);
  const tmp = useTmpDir('fcmae-pretrain-');
  let data = '';
  before(() => {
    data = tmp('data');
    makeImages(data, 6);
  });

  const base = (out: string): PretrainOptions => ({
    data,
    arch: ARCH,
    out,
    epochs: 3,
    batchSize: 2,
    accum: 2,
    imageSize: 64,
    decoderDim: 8,
    repeats: 2,
    warmupEpochs: 1,
    blr: 1.5e-2,
    reconstructImages: 2,
    reconstructEvery: 2,
    seed: 5,
  });

  it('lists images recursively, ignoring labels and other files', () => {
    const s = listImagesRecursive(data);
    expect(s.map((x) => path.relative(data, x.file))).to.deep.equal(['a/img1.png', 'a/img3.png', 'a/img5.png', 'b/c/img0.png', 'b/c/img2.png', 'b/c/img4.png']);
  });

  it('a resumed run equals an uninterrupted one bit for bit; writes log, pictures, encoder dir and the FB2 checkpoint', async () => {
    const a = tmp('a');
    const b = tmp('b');
    const events: string[] = [];
    const before = tf.memory().numTensors;
    const ra = await pretrain({ ...base(a), onEvent: (e) => events.push(e.type) });
    expect(tf.memory().numTensors, 'no tensors left behind').to.equal(before);
    expect(events.filter((e) => e === 'step')).to.have.length(9); // 12 crops / (2 x accum 2) = 3 steps x 3 epochs
    await pretrain({ ...base(b), stopAfterEpochs: 1 });
    expect(fs.existsSync(path.join(b, 'encoder'))).to.equal(false);
    await pretrain({ ...base(b), resume: true });
    const ta = readSafetensors(path.join(a, 'checkpoint.safetensors')).tensors;
    const tb = readSafetensors(path.join(b, 'checkpoint.safetensors')).tensors;
    expect([...tb.keys()]).to.deep.equal([...ta.keys()]);
    expect([...ta.keys()].some((k) => k.startsWith('opt.m.mask_token'))).to.equal(true);
    for (const [k, v] of ta)
      expect(Buffer.from((tb.get(k)!.data as Float32Array).buffer).equals(Buffer.from((v.data as Float32Array).buffer)), k).to.equal(true);
    const strip = (f: string) =>
      fs
        .readFileSync(f, 'utf8')
        .trim()
        .split('\n')
        .map((l) => {
          const r = JSON.parse(l);
          delete r.seconds;
          delete r.images_per_s;
          return r;
        });
    const la = strip(path.join(a, 'log.jsonl'));
    expect(la).to.deep.equal(strip(path.join(b, 'log.jsonl')));
    expect(la.map((r) => r.epoch)).to.deep.equal([1, 2, 3]);
    expect(la.every((r) => Number.isFinite(r.loss) && r.loss > 0)).to.equal(true);
    expect(ra.history.map((r) => r.loss)).to.deep.equal(la.map((r) => r.loss));
    // lr: blr x 2 x 2 / 256, warmup 1 epoch (3 steps), cosine to 0 over the rest
    expect(la[2].lr).to.be.below(la[1].lr);

    // reconstruction grids at epochs 2 and 3 (the last): 2 rows x 4 panels of 64 px, 4-px gutters
    const pics = fs
      .readdirSync(a)
      .filter((f) => f.endsWith('.png'))
      .sort();
    expect(pics).to.deep.equal(['reconstruction-e002.png', 'reconstruction-e003.png']);
    const img = await decodeImage(path.join(a, pics[1]));
    expect([img.width, img.height]).to.deep.equal([4 * 64 + 5 * 4, 2 * 64 + 3 * 4]);

    // encoder directory: a numClasses-0 ConvNeXt V2 with the trained encoder weights
    const { model } = await loadModel(path.join(a, 'encoder'));
    expect(model.numClasses).to.equal(0);
    const f = fcmaeFromRun(a);
    for (const [k, v] of f.encoder.parameters()) expect(Array.from(model.getWeights().get(k)!.dataSync()), k).to.deep.equal(Array.from(v.dataSync()));
    // the final norm is at its init: the embedding is pool -> LayerNorm(weight 1, bias 0), not zeros
    expect(Array.from(model.getWeights().get('head.norm.weight')!.dataSync()).every((v) => v === 1)).to.equal(true);
    const x1 = tf.randomNormal([1, 64, 64, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
    const e = model.embed(x1);
    expect(e.shape).to.deep.equal([1, 16]);
    const want = tf.tidy(() => {
      const p = tf.mean(model.forwardFeatures(x1), [1, 2]);
      const m = tf.mean(p, -1, true);
      return tf.div(tf.sub(p, m), tf.sqrt(tf.add(tf.mean(tf.square(tf.sub(p, m)), -1, true), 1e-6)));
    });
    const ed = e.dataSync();
    const wd = want.dataSync();
    expect(Math.max(...Array.from(ed).map(Math.abs))).to.be.above(0.1);
    for (let i = 0; i < wd.length; i++) expect(ed[i]).to.be.closeTo(wd[i], 1e-4);
    tf.dispose([x1, e, want]);
    model.dispose();

    // fcmae.pth (Minkowski names) reads back to the same encoder and decoder
    const g = await loadFcmaeCheckpoint(path.join(a, 'fcmae.pth'));
    const fp = f.parameters();
    expect([...g.parameters().keys()].sort()).to.deep.equal([...fp.keys()].sort());
    for (const [k, v] of g.parameters()) expect(Array.from(v.dataSync()), k).to.deep.equal(Array.from(fp.get(k)!.dataSync()));
    f.dispose();
    g.dispose();
  });

  it('rejects bad options with a message naming them', async () => {
    await pretrain({ ...base(tmp('x')), imageSize: 48 }).then(
      () => expect.fail('should throw'),
      (e: Error) => expect(e.message).to.match(/imageSize must be divisible by 32/),
    );
    await pretrain({ ...base(tmp('x')), batchSize: 100 }).then(
      () => expect.fail('should throw'),
      (e: Error) => expect(e.message).to.match(/exceeds the 12 images/),
    );
    await pretrain({ ...base(tmp('y')), resume: true }).then(
      () => expect.fail('should throw'),
      (e: Error) => expect(e.message).to.match(/no checkpoint.safetensors/),
    );
  });
});
