/**
 * Parity with PyTorch: every case directory written by test/parity/make_fixtures.py holds a
 * checkpoint in a real layout (official, timm, torchvision, HF), an input batch and PyTorch's
 * outputs. The checkpoint is converted by weights-converter and run here:
 *   logits:   max|ours - ref| <= 1e-4 * max(1, max|ref|), identical argmax
 *   pre-logits and every stage map: the same bound
 * Default cases: the small committed ones (test/fixtures/parity). `npm run test:parity` points
 * PARITY_DIR at full-size ones (PARITY_ONLY=a,b selects some).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { readNpyFloat32 } from '../../src/io/npy';
import { loadModel } from '../../src/factory';
import { loadConvertedModel } from '../../src/io/model_dir';
import { convertCheckpoint } from '../../weights-converter/convert';
import { writeModelDir } from '../../src/io/model_dir';
import { argmaxRows, expectNoLeak, maxAbs, maxAbsDiff, useBackend } from '../helpers';

const DIR = process.env.PARITY_DIR ?? path.join(__dirname, '../../../test/fixtures/parity');
const ONLY = (process.env.PARITY_ONLY ?? '').split(',').filter(Boolean);
const BACKEND = process.env.PARITY_BACKEND ?? 'wasm';

interface Meta {
  case: string;
  layout: string;
  version: number;
  depths: number[];
  dims: number[];
  num_classes: number;
  checkpoint: string;
  final_ln_eps: number;
  tolerance?: number;
}

function cases(): string[] {
  if (!fs.existsSync(DIR)) return [];
  return fs
    .readdirSync(DIR)
    .filter((d) => fs.existsSync(path.join(DIR, d, 'meta.json')))
    .filter((d) => ONLY.length === 0 || ONLY.includes(d))
    .sort();
}

function nchwToNhwc(file: string): tf.Tensor4D {
  const a = readNpyFloat32(file);
  return tf.tidy(() => tf.transpose(tf.tensor4d(a.data, a.shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D);
}

/** Asserts the parity bound and returns the relative error. */
function expectParity(label: string, ours: ArrayLike<number>, ref: ArrayLike<number>, tolerance = 1e-4): number {
  expect(ours.length, `${label} size`).to.equal(ref.length);
  const scale = Math.max(1, maxAbs(ref));
  const err = maxAbsDiff(ours, ref);
  expect(err, `${label}: max |ours - ref| = ${err.toExponential(3)} vs bound ${(tolerance * scale).toExponential(3)}`).to.be.at.most(tolerance * scale);
  return err / scale;
}

describe(`parity with PyTorch [${BACKEND}] (${path.relative(process.cwd(), DIR) || DIR})`, function () {
  this.timeout(600_000);
  before(() => useBackend(BACKEND));
  const list = cases();

  it('has cases to check', () => {
    expect(list.length, `no parity cases under ${DIR}`).to.be.greaterThan(0);
  });

  for (const name of list) {
    it(`${name}: logits, argmax, pre-logits and stage maps match`, async () => {
      const dir = path.join(DIR, name);
      const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as Meta;
      const { model, meta: loaded } = await loadModel(path.join(dir, meta.checkpoint));
      try {
        expect(model.config.version).to.equal(meta.version);
        expect(model.config.depths).to.deep.equal(meta.depths);
        expect(model.config.dims).to.deep.equal(meta.dims);
        expect(model.config.numClasses).to.equal(meta.num_classes);
        expect(model.config.headNormEps).to.equal(meta.final_ln_eps);
        expect(loaded.source?.layout).to.equal(meta.layout === 'tv' ? 'torchvision' : meta.layout);
        const x = nchwToNhwc(path.join(dir, 'input.npy'));
        const refLogits = readNpyFloat32(path.join(dir, 'logits.npy'));
        const logits = model.forward(x);
        const ours = logits.dataSync();
        const rel = expectParity('logits', ours, refLogits.data, meta.tolerance ?? 1e-4);
        expect(argmaxRows(ours, meta.num_classes), 'argmax').to.deep.equal(argmaxRows(refLogits.data, meta.num_classes));
        expectParity('pre-logits', model.embed(x).dataSync(), readNpyFloat32(path.join(dir, 'prelogits.npy')).data);
        const stages = model.forwardStages(x);
        stages.forEach((s, i) => {
          const ref = readNpyFloat32(path.join(dir, `stage${i}.npy`)); // NCHW
          const nchw = tf.tidy(() => tf.transpose(s, [0, 3, 1, 2]).dataSync());
          expect([s.shape[0], s.shape[3], s.shape[1], s.shape[2]]).to.deep.equal(ref.shape);
          expectParity(`stage ${i}`, nchw, ref.data);
        });
        expectNoLeak(() => model.forward(x).dispose());
        tf.dispose([x, logits, ...stages]);
        if (process.env.PARITY_VERBOSE) console.log(`      ${name}: logits rel err ${rel.toExponential(2)}`);
      } finally {
        model.dispose();
      }
    });
  }

  if (list.length > 0) {
    it('a converted directory reloads to identical logits; --fp16 within 2e-3 relative at half the size', async () => {
      const name = list.find((n) => n.includes('v2_official')) ?? list[0];
      const dir = path.join(DIR, name);
      const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as Meta;
      const c = await convertCheckpoint(path.join(dir, meta.checkpoint));
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-parity-'));
      try {
        writeModelDir(path.join(tmp, 'f32'), c.weights, c.meta);
        writeModelDir(path.join(tmp, 'f16'), c.weights, c.meta, { fp16: true });
        const size = (d: string) =>
          fs
            .readdirSync(d)
            .filter((f) => f.endsWith('.bin'))
            .reduce((a, f) => a + fs.statSync(path.join(d, f)).size, 0);
        expect(size(path.join(tmp, 'f16'))).to.equal(size(path.join(tmp, 'f32')) / 2);
        const x = nchwToNhwc(path.join(dir, 'input.npy'));
        const ref = readNpyFloat32(path.join(dir, 'logits.npy')).data;
        const f32 = await loadConvertedModel(path.join(tmp, 'f32'));
        const f16 = await loadConvertedModel(path.join(tmp, 'f16', 'model.json'));
        expect(f16.meta.storage).to.equal('float16');
        expectParity('f32 reload', f32.model.forward(x).dataSync(), ref);
        expectParity('f16 reload', f16.model.forward(x).dataSync(), ref, 2e-3);
        f32.model.dispose();
        f16.model.dispose();
        x.dispose();
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    });
  }
});
