/** Predictor: images in, labels/embeddings/feature maps out; labels; tolerance of bad files; no leaks. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { ConvNeXtError } from '../../src/errors';
import { decodeImage } from '../../src/data/decode';
import { imagenet1kLabels, Predictor, readLabelsFile, runTolerant } from '../../src/inference';
import { createModel } from '../../src/factory';
import { writeModelDir } from '../../src/io/model_dir';
import { readTensors } from '../../src/util/tensors';
import { expectClose, useBackend } from '../helpers';

const ROOT = path.resolve(__dirname, '../../..');
const IMAGES = path.join(ROOT, 'test/fixtures/images');
const CAT = path.join(IMAGES, 'chelsea.png');
const ROCKET = path.join(IMAGES, 'rocket.jpg');
const TRUNCATED = path.join(IMAGES, 'truncated.jpg');

describe('Predictor', function () {
  this.timeout(120_000);
  let p: Predictor;
  before(async () => {
    await useBackend('wasm');
    p = new Predictor(createModel('convnext_atto', { seed: 2 }), {}, { batchSize: 2 });
  });
  after(() => p.dispose());

  it('ships the ImageNet-1k class names index-aligned with official heads', () => {
    const l = imagenet1kLabels();
    expect(l).to.have.length(1000);
    expect([l[0], l[281], l[292], l[999]]).to.deep.equal(['tench', 'tabby', 'tiger', 'toilet tissue']);
    expect(p.labels).to.equal(l);
  });

  it('classify: top-k sorted probabilities from paths, bytes and decoded images alike', async () => {
    const img = await decodeImage(ROCKET);
    const [a, b, c] = await p.classify([CAT, fs.readFileSync(CAT), img], { topk: 5 });
    expect(a).to.have.length(5);
    for (let i = 1; i < 5; i++) expect(a[i - 1].prob).to.be.at.least(a[i].prob);
    expect(a.map((x) => x.index)).to.deep.equal(b.map((x) => x.index));
    expectClose(
      a.map((x) => x.prob),
      b.map((x) => x.prob),
      0,
      0,
    );
    expect(c[0].label).to.equal(imagenet1kLabels()[c[0].index]);
    // Matches the tensor path: preprocess + forward + softmax by hand.
    const x = await p.preprocessBatch([CAT]);
    const probs = tf.tidy(() => tf.softmax(p.model.forward(x)).dataSync());
    expect(a[0].prob).to.be.closeTo(Math.max(...probs), 1e-6);
    x.dispose();
  });

  it('embed and features: shapes, batching independent of batch size, no leaks', async () => {
    const before = tf.memory().numTensors;
    const e2 = await p.embed([CAT, ROCKET, CAT]);
    expect(e2).to.have.length(3);
    expect(e2[0]).to.have.length(320);
    expectClose(e2[0], e2[2], 1e-5, 1e-5);
    const single = await new Predictor(p.model, {}, { batchSize: 1 }).embed(ROCKET);
    expectClose(single[0], e2[1], 1e-4, 1e-4);
    await p.classify([CAT, ROCKET]);
    expect(tf.memory().numTensors).to.equal(before);
    const maps = await p.features(CAT);
    expect(maps.map((m) => m.shape)).to.deep.equal([
      [1, 56, 56, 40],
      [1, 28, 28, 80],
      [1, 14, 14, 160],
      [1, 7, 7, 320],
    ]);
    tf.dispose(maps);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('a file that cannot be decoded fails alone; the others still get results', async () => {
    const seen: string[] = [];
    await runTolerant(p, [CAT, TRUNCATED, path.join(IMAGES, 'missing.png'), ROCKET], p.classifyJob({ topk: 1 }), (r) => {
      seen.push('error' in r ? `error:${path.basename(r.input as string)}:${r.error.message}` : `ok:${path.basename(r.input as string)}`);
    });
    expect(seen[0]).to.equal('ok:chelsea.png');
    expect(seen[1]).to.match(/^error:truncated\.jpg:image .*truncated\.jpg: .*truncated JPEG/);
    expect(seen[2]).to.match(/^error:missing\.png:.*missing\.png.*no such file/i);
    expect(seen[3]).to.equal('ok:rocket.jpg');
    let err: Error | undefined;
    await p.classify([TRUNCATED]).catch((e) => (err = e));
    expect(err).to.be.instanceOf(ConvNeXtError);
  });

  it('labels: stored with the model, a labels file, class_<i> otherwise; a count mismatch is an error', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-labels-'));
    try {
      const m = createModel({ version: 2, depths: [1, 1, 1, 1], dims: [8, 8, 8, 8], numClasses: 3 });
      writeModelDir(path.join(tmp, 'm'), await readTensors(m.getWeights()), { config: m.config, labels: ['cat', 'dog', 'fish'] });
      const loaded = await Predictor.load(path.join(tmp, 'm'));
      expect(loaded.labels).to.deep.equal(['cat', 'dog', 'fish']);
      loaded.dispose();
      fs.writeFileSync(path.join(tmp, 'l.txt'), 'a\nb\n\nc\n');
      expect(readLabelsFile(path.join(tmp, 'l.txt'))).to.deep.equal(['a', 'b', 'c']);
      fs.writeFileSync(path.join(tmp, 'l.json'), '["x", "y", "z"]');
      expect(readLabelsFile(path.join(tmp, 'l.json'))).to.deep.equal(['x', 'y', 'z']);
      expect(new Predictor(m).labels).to.deep.equal(['class_0', 'class_1', 'class_2']);
      expect(() => new Predictor(m, {}, { labels: ['a'] })).to.throw(ConvNeXtError, /1 labels for a 3-class model/);
      m.dispose();
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('CLI predict --json: one line per image, broken files named on stderr, exit 1 at the end', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-predict-'));
    try {
      writeModelDir(path.join(tmp, 'atto'), await readTensors(p.model.getWeights()), { config: p.model.config });
      const r = spawnSync(
        process.execPath,
        [path.join(ROOT, 'bin/convnext.js'), 'predict', CAT, TRUNCATED, ROCKET, '--model', path.join(tmp, 'atto'), '--topk', '3', '--json'],
        { encoding: 'utf8' },
      );
      expect(r.status).to.equal(1);
      const lines = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => path.basename(l.file))).to.deep.equal(['chelsea.png', 'rocket.jpg']);
      expect(lines[0].top).to.have.length(3);
      expect(Object.keys(lines[0].top[0])).to.deep.equal(['label', 'index', 'prob']);
      expect(r.stderr).to.match(/skipped .*truncated\.jpg: .*truncated JPEG/);
      expect(r.stderr).to.not.match(/\n\s+at /);
      const ok = spawnSync(process.execPath, [path.join(ROOT, 'bin/convnext.js'), 'predict', CAT, '--model', path.join(tmp, 'atto'), '--json'], {
        encoding: 'utf8',
      });
      expect(ok.status).to.equal(0);
      const emb = spawnSync(
        process.execPath,
        [path.join(ROOT, 'bin/convnext.js'), 'embed', CAT, ROCKET, '--model', path.join(tmp, 'atto'), '--output', path.join(tmp, 'e.npy')],
        { encoding: 'utf8' },
      );
      expect(emb.status, emb.stderr).to.equal(0);
      expect(fs.readFileSync(path.join(tmp, 'e.files.txt'), 'utf8').trim().split('\n')).to.deep.equal([CAT, ROCKET]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
