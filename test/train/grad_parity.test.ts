/**
 * Training parity with PyTorch (fixtures: test/train/make_grad_fixtures.py): for tiny V1/V2 models
 * with non-trivial weights, the label-smoothed cross-entropy, every parameter's gradient, and two
 * AdamW steps (decay on >1-D weights only) match torch; with fixed drop-path masks too. Runs on the
 * embedded default (wasm, with our gradient kernels) and on cpu.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { registerWasmTrainingKernels } from '../../src/backend/wasm_gradients';
import { readNpy, readNpyFloat32 } from '../../src/io/npy';
import { loadModel } from '../../src/factory';
import { ConvNeXt } from '../../src/model';
import { AdamW } from '../../src/train/adamw';
import { paramGroups } from '../../src/train/layer_decay';
import { smoothOneHot, softCrossEntropy } from '../../src/train/loss';
import { remapStateDict } from '../../weights-converter/layouts';
import { RawTensor } from '../../weights-converter/types';
import { maxAbs, useBackend } from '../helpers';

const DIR = path.resolve(__dirname, '../../../test/fixtures/train');

interface Meta {
  config: { num_classes: number; drop_path_rate: number };
  optimizer: { lr: number; weight_decay: number; betas: [number, number]; eps: number };
  adam_sensitive_elements: { after_step: Record<string, number[]>; after_step2: Record<string, number[]> };
}

/** Reads <dir>/<official name>.npy files into TF.js layout under canonical names. */
function readTree(
  dir: string,
  names: string[],
  sensitive: Record<string, number[]> = {},
): { values: Map<string, Float32Array>; skip: Map<string, Set<number>> } {
  const raw = new Map<string, RawTensor>();
  const mask = new Map<string, RawTensor>();
  for (const n of names) {
    const a = readNpyFloat32(path.join(dir, `${n}.npy`));
    raw.set(n, { shape: a.shape, dtype: 'float32', data: a.data });
    const m = new Float32Array(a.data.length);
    for (const i of sensitive[n] ?? []) m[i] = 1;
    mask.set(n, { shape: a.shape, dtype: 'float32', data: m });
  }
  const values = new Map([...remapStateDict(raw, { layout: 'official' }).weights].map(([k, v]) => [k, v.data]));
  const skip = new Map(
    [...remapStateDict(mask, { layout: 'official' }).weights].map(([k, v]) => [k, new Set([...v.data.keys()].filter((i) => v.data[i] === 1))]),
  );
  return { values, skip };
}

function expectTreeClose(
  label: string,
  ours: Map<string, tf.Tensor>,
  ref: Map<string, Float32Array>,
  tol: (r: Float32Array) => number,
  skip?: Map<string, Set<number>>,
): void {
  expect([...ours.keys()].sort(), `${label}: names`).to.deep.equal([...ref.keys()].sort());
  for (const [name, t] of ours) {
    const r = ref.get(name)!;
    const o = t.dataSync();
    const bound = tol(r);
    const s = skip?.get(name);
    let worst = 0;
    let at = -1;
    for (let i = 0; i < r.length; i++) {
      if (s?.has(i)) continue;
      const d = Math.abs(o[i] - r[i]);
      if (d > worst) {
        worst = d;
        at = i;
      }
    }
    expect(worst, `${label} ${name}[${at}]: ours ${o[at]} vs torch ${r[at]}, bound ${bound}`).to.be.at.most(bound);
  }
}

async function setup(caseDir: string, dropPathRate = 0): Promise<{ model: ConvNeXt; x: tf.Tensor4D; labels: Int32Array; meta: Meta; names: string[] }> {
  const { model: loaded } = await loadModel(path.join(caseDir, 'model.pth'));
  const model = new ConvNeXt({ ...loaded.config, dropPathRate }, 0, 'zeros');
  model.loadWeights(loaded.getWeights());
  loaded.dispose();
  const inp = readNpyFloat32(path.join(caseDir, 'input.npy'));
  const x = tf.tidy(() => tf.transpose(tf.tensor4d(inp.data, inp.shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D);
  const labels = Int32Array.from(readNpy(path.join(caseDir, 'labels.npy')).data as ArrayLike<number>);
  const meta = JSON.parse(fs.readFileSync(path.join(caseDir, 'meta.json'), 'utf8')) as Meta;
  const names = JSON.parse(fs.readFileSync(path.join(caseDir, 'grad_names.json'), 'utf8')) as string[];
  return { model, x, labels, meta, names };
}

function lossAndGrads(
  model: ConvNeXt,
  x: tf.Tensor4D,
  labels: Int32Array,
  k: number,
  opts: { training?: boolean; dropPathMasks?: number[][] } = {},
): { loss: number; grads: Map<string, tf.Tensor> } {
  const vars = model.getWeights();
  const byTf = new Map([...vars].map(([n, v]) => [v.name, n]));
  const targets = smoothOneHot(labels, k, 0.1);
  const { value, grads } = tf.variableGrads(() => softCrossEntropy(model.forward(x, opts), targets), [...vars.values()]);
  const loss = value.dataSync()[0];
  tf.dispose([value, targets]);
  return { loss, grads: new Map(Object.entries(grads).map(([n, g]) => [byTf.get(n)!, g])) };
}

const gradTol = (r: Float32Array) => 1e-4 * maxAbs(r) + 1e-7;

for (const backend of ['wasm', 'cpu']) {
  describe(`training parity with PyTorch [${backend}]`, function () {
    this.timeout(120_000);
    before(async () => {
      await useBackend(backend);
      registerWasmTrainingKernels();
    });

    for (const c of ['v1', 'v2']) {
      it(`${c}: loss, every gradient, and two AdamW steps match torch`, async () => {
        const dir = path.join(DIR, c);
        const { model, x, labels, meta, names } = await setup(dir);
        const k = meta.config.num_classes;
        const refLoss = JSON.parse(fs.readFileSync(path.join(dir, 'loss.json'), 'utf8'));
        const { loss, grads } = lossAndGrads(model, x, labels, k);
        expect(Math.abs(loss - refLoss.loss) / Math.abs(refLoss.loss), `loss ${loss} vs ${refLoss.loss}`).to.be.below(1e-5);
        expectTreeClose('grad', grads, readTree(path.join(dir, 'grads'), names).values, gradTol);

        // The optimizer alone: torch's gradients into our AdamW give torch's step exactly.
        const o = meta.optimizer;
        const groups = paramGroups(model.parameterInfo());
        const probe = new ConvNeXt(model.config, 0, 'zeros');
        probe.loadWeights(model.getWeights());
        const torchGrads = new Map([...readTree(path.join(dir, 'grads'), names).values].map(([n, d]) => [n, tf.tensor(d, probe.getWeights().get(n)!.shape)]));
        const optAlone = new AdamW(probe.getWeights(), groups, { beta1: o.betas[0], beta2: o.betas[1], eps: o.eps, weightDecay: o.weight_decay });
        optAlone.apply(torchGrads, o.lr);
        const after1 = readTree(path.join(dir, 'after_step'), names, meta.adam_sensitive_elements.after_step);
        expectTreeClose('AdamW on torch grads', probe.getWeights(), after1.values, () => 1e-6);
        optAlone.dispose();
        probe.dispose();
        tf.dispose([...torchGrads.values()]);

        // End to end: our gradients, our AdamW, twice (bias correction at t = 2).
        const opt = new AdamW(model.getWeights(), groups, { beta1: o.betas[0], beta2: o.betas[1], eps: o.eps, weightDecay: o.weight_decay });
        opt.apply(grads, o.lr);
        tf.dispose([...grads.values()]);
        expectTreeClose('after step 1', model.getWeights(), after1.values, () => 1e-5, after1.skip);
        const second = lossAndGrads(model, x, labels, k);
        expect(second.loss).to.be.closeTo(refLoss.loss_at_after_step, 1e-4 * Math.abs(refLoss.loss_at_after_step));
        opt.apply(second.grads, o.lr);
        tf.dispose([...second.grads.values()]);
        const after2 = readTree(path.join(dir, 'after_step2'), names, meta.adam_sensitive_elements.after_step2);
        expectTreeClose('after step 2', model.getWeights(), after2.values, () => 1e-5, after2.skip);
        opt.dispose();
        model.dispose();
        x.dispose();
      });
    }

    it('v1_droppath: training-mode loss and gradients with the same drop-path masks as torch', async () => {
      const dir = path.join(DIR, 'v1_droppath');
      const { model, x, labels, meta, names } = await setup(dir, 0.5);
      expect(meta.config.drop_path_rate).to.equal(0.5);
      const masksJson = JSON.parse(fs.readFileSync(path.join(dir, 'masks.json'), 'utf8')) as Record<string, number[]>;
      const masks = Object.keys(masksJson)
        .sort((a, b) => +a - +b)
        .map((kk) => masksJson[kk]);
      const refLoss = JSON.parse(fs.readFileSync(path.join(dir, 'loss.json'), 'utf8'));
      const before = tf.memory().numTensors;
      const { loss, grads } = lossAndGrads(model, x, labels, meta.config.num_classes, { training: true, dropPathMasks: masks });
      expect(Math.abs(loss - refLoss.loss) / Math.abs(refLoss.loss), `loss ${loss} vs ${refLoss.loss}`).to.be.below(1e-5);
      expectTreeClose('grad', grads, readTree(path.join(dir, 'grads'), names).values, gradTol);
      tf.dispose([...grads.values()]);
      expect(tf.memory().numTensors).to.equal(before);
      model.dispose();
      x.dispose();
    });
  });
}
