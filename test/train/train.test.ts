/** Training pieces: schedule, layer decay, loss, AdamW, augmentation, data, and whole runs (resume, accumulation, freezing). */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import seedrandom from 'seedrandom';
import { ConvNeXtError } from '../../src/errors';
import { createModel } from '../../src/factory';
import { loadConvertedModel } from '../../src/io/model_dir';
import { registerWasmTrainingKernels } from '../../src/backend/wasm_gradients';
import { AdamW } from '../../src/train/adamw';
import { flipHorizontal, mixBatch, randomResizedCropParams, trainTransform, trivialAugment, TRIVIAL_AUGMENT_OPS } from '../../src/train/augment';
import { batches, scanImageFolder, splitTrainVal } from '../../src/train/dataset';
import { convnextLayerId, layerDecayScale, paramGroups } from '../../src/train/layer_decay';
import { smoothOneHot, softCrossEntropy } from '../../src/train/loss';
import { MetricsAccumulator } from '../../src/train/metrics';
import { cosineLr } from '../../src/train/schedule';
import { train } from '../../src/train/trainer';
import { RgbImage } from '../../src/data/image';
import { expectClose, useBackend, writeColourFolder } from '../helpers';

describe('training building blocks', () => {
  before(() => useBackend('cpu'));
  it('cosine schedule: linear warmup from 0, cosine to min', () => {
    const o = { base: 1e-3, min: 1e-6, totalSteps: 110, warmupSteps: 10 };
    expect(cosineLr(0, o)).to.equal(0);
    expect(cosineLr(5, o)).to.be.closeTo(5e-4, 1e-12);
    expect(cosineLr(10, o)).to.be.closeTo(1e-3, 1e-12);
    expect(cosineLr(60, o)).to.be.closeTo(1e-6 + (1e-3 - 1e-6) / 2, 1e-12);
    expect(cosineLr(110, o)).to.be.closeTo(1e-6, 1e-12);
  });

  it('layer decay follows FB get_num_layer_for_convnext (12 layers + head)', () => {
    expect(convnextLayerId('stem.conv.weight')).to.equal(0);
    expect(convnextLayerId('stages.0.blocks.2.norm.weight')).to.equal(1);
    expect(convnextLayerId('stages.1.downsample.conv.weight')).to.equal(2);
    expect(convnextLayerId('stages.2.downsample.conv.weight')).to.equal(3);
    expect(convnextLayerId('stages.2.blocks.0.gamma')).to.equal(3);
    expect(convnextLayerId('stages.2.blocks.26.gamma')).to.equal(11);
    expect(convnextLayerId('stages.3.downsample.conv.bias')).to.equal(12);
    expect(convnextLayerId('stages.3.blocks.1.mlp.fc1.weight')).to.equal(12);
    expect(convnextLayerId('head.fc.weight')).to.equal(13);
    expect(layerDecayScale('head.fc.weight', 0.8)).to.equal(1);
    expect(layerDecayScale('stem.conv.weight', 0.8)).to.be.closeTo(0.8 ** 13, 1e-15);
    const g = paramGroups([
      { name: 'stages.0.blocks.0.norm.weight', shape: [8] },
      { name: 'stages.0.blocks.0.mlp.fc1.weight', shape: [8, 32] },
    ]);
    expect(g.get('stages.0.blocks.0.norm.weight')).to.deep.equal({ lrScale: 1, decay: false });
    expect(g.get('stages.0.blocks.0.mlp.fc1.weight')).to.deep.equal({ lrScale: 1, decay: true });
  });

  it('label-smoothed cross-entropy equals the PyTorch formula', () => {
    const logits = tf.tensor2d([
      [2, 0.5, -1],
      [0, 1, 3],
    ]);
    const loss = tf.tidy(() => softCrossEntropy(logits, smoothOneHot([0, 2], 3, 0.1)).dataSync()[0]);
    const lsm = (row: number[]) => {
      const m = Math.max(...row);
      const z = Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) + m;
      return row.map((v) => v - z);
    };
    const ce = (row: number[], y: number) => {
      const l = lsm(row);
      return 0.9 * -l[y] + 0.1 * -(l.reduce((a, b) => a + b, 0) / 3);
    };
    expect(loss).to.be.closeTo((ce([2, 0.5, -1], 0) + ce([0, 1, 3], 2)) / 2, 1e-6);
    logits.dispose();
  });

  it('AdamW matches the torch.optim.AdamW update by hand, with decay only where asked', () => {
    const p = new Map<string, tf.Variable>([
      ['w', tf.variable(tf.tensor2d([[1, -2]]))],
      ['b', tf.variable(tf.tensor1d([0.5]))],
    ]);
    const opt = new AdamW(
      p,
      new Map([
        ['w', { lrScale: 1, decay: true }],
        ['b', { lrScale: 0.5, decay: false }],
      ]),
      { weightDecay: 0.1 },
    );
    const lr = 0.01;
    const grads = [
      new Map<string, tf.Tensor>([
        ['w', tf.tensor2d([[0.3, -0.1]])],
        ['b', tf.tensor1d([2])],
      ]),
      new Map<string, tf.Tensor>([
        ['w', tf.tensor2d([[-0.2, 0.4]])],
        ['b', tf.tensor1d([-1])],
      ]),
    ];
    // Reference, written out for one scalar at a time.
    const ref = (p0: number, gs: number[], plr: number, wd: number) => {
      let x = p0;
      let m = 0;
      let v = 0;
      gs.forEach((g, i) => {
        const t = i + 1;
        x *= 1 - plr * wd;
        m = 0.9 * m + 0.1 * g;
        v = 0.999 * v + 0.001 * g * g;
        x -= (plr / (1 - 0.9 ** t)) * (m / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** t) + 1e-8));
      });
      return x;
    };
    for (const g of grads) opt.apply(g, lr);
    expectClose(p.get('w')!.dataSync(), [ref(1, [0.3, -0.2], lr, 0.1), ref(-2, [-0.1, 0.4], lr, 0.1)], 1e-6, 1e-6);
    expectClose(p.get('b')!.dataSync(), [ref(0.5, [2, -1], lr * 0.5, 0)], 1e-6, 1e-6);
    expect(opt.step).to.equal(2);
    opt.dispose();
    tf.dispose([...p.values(), ...grads.flatMap((g) => [...g.values()])]);
  });

  it('top-1 / top-5 and the confusion matrix', () => {
    const m = new MetricsAccumulator(6);
    m.add([0, 1, 2, 3, 4, 5, /**/ 5, 4, 3, 2, 1, 0], [5, 5], 0.5);
    const r = m.result();
    expect(r.top1).to.equal(0.5);
    expect(r.top5).to.equal(0.5);
    expect(r.confusion[5][5]).to.equal(1);
    expect(r.confusion[5][0]).to.equal(1);
  });
});

function solid(w: number, h: number, f: (x: number, y: number) => [number, number, number]): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set(f(x, y), (y * w + x) * 3);
  return { width: w, height: h, data };
}

describe('augmentation', () => {
  const img = solid(40, 30, (x, y) => [x * 6, y * 8, (x + y) * 3]);

  it('RandomResizedCrop parameters stay inside the image with the scale and ratio bounds', () => {
    const rng = seedrandom('rrc');
    for (let i = 0; i < 200; i++) {
      const [top, left, h, w] = randomResizedCropParams(40, 30, rng);
      expect(top >= 0 && left >= 0 && top + h <= 30 && left + w <= 40).to.equal(true);
      const area = (h * w) / 1200;
      expect(area).to.be.at.most(1.0001);
    }
  });

  it('flip mirrors columns; every TrivialAugment op keeps the shape and is seeded', () => {
    const f = flipHorizontal(img);
    expect(Array.from(f.data.slice(0, 3))).to.deep.equal(Array.from(img.data.slice(39 * 3, 40 * 3)));
    expect(TRIVIAL_AUGMENT_OPS).to.have.length(14);
    const a = trainTransform(img, seedrandom('t'), { size: 24 });
    const b = trainTransform(img, seedrandom('t'), { size: 24 });
    expect(a.width).to.equal(24);
    expect(Array.from(a.data)).to.deep.equal(Array.from(b.data));
    const seen = new Set<string>();
    const rng = seedrandom('ops');
    for (let i = 0; i < 300; i++) {
      const out = trivialAugment(img, rng);
      expect(out.data.length).to.equal(img.data.length);
      seen.add(Buffer.from(out.data).toString('base64').slice(0, 40));
    }
    expect(seen.size).to.be.greaterThan(20);
  });

  it('mixup mixes images and targets with the same lambda; cutmix pastes a box', () => {
    const n = 2;
    const x = Float32Array.from([...new Array(12).fill(1), ...new Array(12).fill(0)]);
    const t = Float32Array.from([1, 0, 0, 1]);
    const mixed = mixBatch(x, [n, 2, 2, 3], t, 2, seedrandom('mx'), { mixupAlpha: 0.8 });
    const lam = x[0];
    expect(mixed[0]).to.be.closeTo(lam, 1e-6);
    expect(x[12]).to.be.closeTo(1 - lam, 1e-6);
    const x2 = Float32Array.from([...new Array(48).fill(1), ...new Array(48).fill(0)]);
    const m2 = mixBatch(x2, [2, 4, 4, 3], t, 2, seedrandom('cm'), { cutmixAlpha: 1 });
    const kept = x2.slice(0, 48).filter((v) => v === 1).length / 48;
    expect(m2[0]).to.be.closeTo(kept, 1e-6);
  });
});

describe('training runs', function () {
  this.timeout(300_000);
  let tmp: string;
  let data: string;
  before(async () => {
    await useBackend('wasm');
    registerWasmTrainingKernels();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-train-'));
    data = path.join(tmp, 'data');
    writeColourFolder(data, { perClass: 10, seed: 'data', noise: 80 });
    fs.writeFileSync(path.join(data, 'class_1', 'broken.png'), 'not a png');
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('scans class folders and splits them seeded and stratified', () => {
    const ds = scanImageFolder(data);
    expect(ds.classes).to.deep.equal(['class_0', 'class_1', 'class_2']);
    expect(ds.samples).to.have.length(31);
    const a = splitTrainVal(ds, 0.2, 1);
    const b = splitTrainVal(ds, 0.2, 1);
    expect(a.val.samples.map((s) => s.file)).to.deep.equal(b.val.samples.map((s) => s.file));
    expect([0, 1, 2].map((k) => a.val.samples.filter((s) => s.label === k).length)).to.deep.equal([2, 2, 2]);
    expect(() => scanImageFolder(path.join(tmp, 'none'))).to.throw(ConvNeXtError, /not a directory/);
  });

  it('streams batches, skipping an undecodable image with a report', async () => {
    const ds = scanImageFolder(data);
    const skipped: string[] = [];
    let n = 0;
    for await (const b of batches(ds.samples, {
      batchSize: 8,
      size: 32,
      transform: () => new Float32Array(32 * 32 * 3),
      shuffle: true,
      seed: 's',
      onSkip: (f) => skipped.push(path.basename(f)),
    })) {
      expect(b.shape[1]).to.equal(32);
      n += b.labels.length;
    }
    expect(n).to.equal(30);
    expect(skipped).to.deep.equal(['broken.png']);
  });

  const base = () => ({ data, valSplit: 0.2, arch: 'convnext_atto', epochs: 2, imageSize: 32, batchSize: 6, lr: 2e-3, seed: 3 });

  it('learns colour classes on wasm, writes checkpoint/log/report/model, and resumes exactly', async () => {
    const full = await train({ ...base(), out: path.join(tmp, 'full') });
    expect(full.history).to.have.length(2);
    expect(full.history[1].train_loss).to.be.below(full.history[0].train_loss);
    expect(full.final.top1).to.be.at.least(0.5);
    for (const f of ['checkpoint.safetensors', 'log.jsonl', 'report.json', 'model/model.json'])
      expect(fs.existsSync(path.join(tmp, 'full', f)), f).to.equal(true);
    const report = JSON.parse(fs.readFileSync(path.join(tmp, 'full', 'report.json'), 'utf8'));
    expect(report.final.confusion).to.have.length(3);
    const { model, meta } = await loadConvertedModel(path.join(tmp, 'full', 'model'));
    expect(meta.labels).to.deep.equal(['class_0', 'class_1', 'class_2']);
    expect(model.numClasses).to.equal(3);

    await train({ ...base(), out: path.join(tmp, 'split'), stopAfterEpochs: 1 });
    const resumed = await train({ ...base(), out: path.join(tmp, 'split'), resume: true });
    expect(resumed.history.map((h) => h.train_loss)).to.deep.equal(full.history.map((h) => h.train_loss));
    const { model: m2 } = await loadConvertedModel(path.join(tmp, 'split', 'model'));
    for (const [k, v] of model.getWeights()) expect(Array.from(m2.getWeights().get(k)!.dataSync()), k).to.deep.equal(Array.from(v.dataSync()));
    model.dispose();
    m2.dispose();
  });

  it('gradient accumulation: 2 x 3 images per step equals 6 images per step', async () => {
    const common = { ...base(), epochs: 1, dropPathRate: 0, trivialAugment: false };
    // The running train loss after each optimizer step: the first is the same 6 images under the
    // same weights; the second equals only if the accumulated step moved the weights identically.
    // (Later steps drift apart slowly: Adam's update of a near-zero gradient flips with float noise.)
    const losses = async (batchSize: number, accumSteps: number, out: string) => {
      const l: number[] = [];
      await train({ ...common, batchSize, accumSteps, out: path.join(tmp, out), onEvent: (e) => e.type === 'step' && l.push(e.loss) });
      return l;
    };
    const l6 = await losses(6, 1, 'b6');
    const l3 = await losses(3, 2, 'b3x2');
    expect(l3).to.have.length(l6.length);
    expect(l3[0]).to.be.closeTo(l6[0], 1e-5 * l6[0]);
    expect(l3[1]).to.be.closeTo(l6[1], 1e-5 * l6[1]);
    expect(l6[1]).to.not.be.closeTo(l6[0], 1e-3);
  });

  it('freezing the backbone trains only the head; a head of another class count is re-initialised', async () => {
    const init = createModel('convnext_atto', { numClasses: 5, seed: 3 });
    const { writeModelDir } = await import('../../src/io/model_dir');
    const { readTensors } = await import('../../src/util/tensors');
    writeModelDir(path.join(tmp, 'init'), await readTensors(init.getWeights()), { config: init.config });
    await train({ ...base(), epochs: 1, init: path.join(tmp, 'init'), freeze: 'head', out: path.join(tmp, 'frozen') });
    const { model } = await loadConvertedModel(path.join(tmp, 'frozen', 'model'));
    const w0 = init.getWeights();
    const w1 = model.getWeights();
    expect(Array.from(w1.get('stages.2.blocks.3.mlp.fc1.weight')!.dataSync())).to.deep.equal(
      Array.from(w0.get('stages.2.blocks.3.mlp.fc1.weight')!.dataSync()),
    );
    expect(w1.get('head.fc.weight')!.shape).to.deep.equal([320, 3]);
    expect(w0.get('head.fc.weight')!.shape).to.deep.equal([320, 5]);
    expect(Array.from(w1.get('stem.conv.weight')!.dataSync())).to.deep.equal(Array.from(w0.get('stem.conv.weight')!.dataSync()));
    init.dispose();
    model.dispose();
  });

  it('--resume without a checkpoint and a bad config are clear errors', async () => {
    let err: Error | undefined;
    await train({ ...base(), out: path.join(tmp, 'none'), resume: true }).catch((e) => (err = e));
    expect(err!.message).to.match(/resume: no checkpoint\.safetensors in/);
    err = undefined;
    await train({ ...base(), batchSize: 0, out: path.join(tmp, 'bad') }).catch((e) => (err = e));
    expect(err!.message).to.match(/batchSize must be an integer from 1 to 4096, got 0/);
  });
});
