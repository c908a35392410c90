/**
 * FCMAE checkpoints as model input (convert / --model / --init): the released pt_only encoder layout
 * and FB2's pretraining checkpoint (Minkowski names) both load as numClasses-0 encoders whose
 * embedding (pool -> LayerNorm at init) equals PyTorch's; the zoo's convnextv2_*.fcmae tags; and
 * `train --init <encoder>` starts from FB2's fresh head (std 2e-5).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { registerWasmTrainingKernels } from '../../src/backend/wasm_gradients';
import { loadModel } from '../../src/factory';
import { createModel } from '../../src/factory';
import { train } from '../../src/train/trainer';
import { listPretrained, getPretrained } from '../../src/zoo/registry';
import { readNpyFloat32 } from '../../src/io/npy';
import { writeModelDir } from '../../src/io/model_dir';
import { readTensors } from '../../src/util/tensors';
import { encodePng } from '../../src/data/png';
import { maxAbs, onBackend, runCli, useTmpDir } from '../helpers';

const ROOT = path.resolve(__dirname, '../../..');
const FIX = path.join(ROOT, 'test/fixtures/fcmae');

const run = runCli;

describe('FCMAE checkpoints as model input', function () {
  this.timeout(300_000);
  onBackend('wasm', registerWasmTrainingKernels);
  const tmp = useTmpDir('fcmae-in-');

  const ref = () => readNpyFloat32(path.join(FIX, 'pt_only_features.npy'));

  it('convert + forward --features on a pt_only-layout file equals PyTorch (pool -> LayerNorm at init)', () => {
    const out = tmp('pt_only');
    const c = run('convert', path.join(FIX, 'pt_only.pth'), out);
    expect(c.code, c.stderr).to.equal(0);
    const f = tmp('f.npy');
    const r = run('forward', '--model', out, '--input', path.join(FIX, 'input.npy'), '--features', '--output', f);
    expect(r.code, r.stderr).to.equal(0);
    const got = readNpyFloat32(f);
    const want = ref();
    expect(got.shape).to.deep.equal(want.shape);
    const bound = 1e-4 * Math.max(1, maxAbs(want.data));
    for (let i = 0; i < want.data.length; i++) expect(Math.abs(got.data[i] - want.data[i]), `feature ${i}`).to.be.at.most(bound);
    const meta = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8')).userDefinedMetadata.convnext;
    expect(meta.config.numClasses).to.equal(0);
    expect(meta.source.fcmae).to.equal('encoder-only');
  });

  it("FB2's pretraining checkpoint loads as the same encoder (decoder dropped, kernels remapped)", async () => {
    const { model, meta } = await loadModel(path.join(FIX, 'fcmae_minkowski.pth'));
    expect(model.numClasses).to.equal(0);
    expect(meta.source?.fcmae).to.equal('pretrain');
    const a = readNpyFloat32(path.join(FIX, 'input.npy'));
    const emb = tf.tidy(() =>
      model.embed(tf.transpose(tf.tensor4d(a.data, a.shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D).dataSync(),
    );
    const want = ref();
    for (let i = 0; i < want.data.length; i++) expect(Math.abs(emb[i] - want.data[i])).to.be.at.most(1e-4 * Math.max(1, maxAbs(want.data)));
    model.dispose();
  });

  it('the zoo has the eight convnextv2_*.fcmae encoders (pt_only files, numClasses 0)', () => {
    const names = listPretrained('convnextv2_*.fcmae');
    expect(names).to.deep.equal(['atto', 'femto', 'pico', 'nano', 'tiny', 'base', 'large', 'huge'].map((s) => `convnextv2_${s}.fcmae`));
    const e = getPretrained('convnextv2_tiny.fcmae');
    expect(e.url).to.equal('https://dl.fbaipublicfiles.com/convnext/convnextv2/pt_only/convnextv2_tiny_1k_224_fcmae.pt');
    expect(e.numClasses).to.equal(0);
    expect(e.labels).to.equal(undefined);
    expect(getPretrained('convnextv2_tiny').name).to.equal('convnextv2_tiny.fcmae_ft_in22k_in1k'); // defaults unchanged
  });

  it('train --init <FCMAE encoder> gets a fresh head with std 2e-5 and bias 0 (FB2 main_finetune)', async () => {
    const enc = createModel('convnextv2_atto', { numClasses: 0, seed: 3 });
    const encDir = tmp('enc');
    writeModelDir(encDir, await readTensors(enc.getWeights()), { config: enc.config });
    enc.dispose();
    const data = tmp('cls');
    for (const c of ['a', 'b'])
      for (let i = 0; i < 2; i++) {
        fs.mkdirSync(path.join(data, c), { recursive: true });
        fs.writeFileSync(path.join(data, c, `${i}.png`), encodePng({ width: 40, height: 40, data: new Uint8Array(40 * 40 * 3).fill(c === 'a' ? 40 : 200) }));
      }
    const out = tmp('ft');
    await train({ data, arch: 'convnextv2_atto', init: encDir, epochs: 1, imageSize: 32, batchSize: 2, lr: 1e-12, minLr: 0, out, dropPathRate: 0 });
    const { model } = await loadModel(path.join(out, 'model'));
    const w = model.getWeights().get('head.fc.weight')!.dataSync();
    const sd = Math.sqrt(Array.from(w).reduce((s, v) => s + v * v, 0) / w.length);
    expect(sd).to.be.within(1.6e-5, 2.4e-5);
    expect(maxAbs(model.getWeights().get('head.fc.bias')!.dataSync())).to.be.below(1e-9);
    model.dispose();
  });
});
