/** loadModel: model directories, training run directories, checkpoints, default tags, new heads, leaks. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { ConvNeXtError, ZooError } from '../../src/errors';
import { LoadProgress, createModel, loadModel } from '../../src/factory';
import { writeModelDir } from '../../src/io/model_dir';
import { readTensors } from '../../src/util/tensors';
import { onBackend } from '../helpers';

const CHECKPOINT = path.resolve(__dirname, '../../../test/fixtures/parity/v1_official/checkpoint.pth');

describe('loadModel', () => {
  onBackend('cpu');
  let tmp: string;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'load-'));
    const m = createModel('convnext_atto', { numClasses: 4, seed: 1 });
    writeModelDir(path.join(tmp, 'dir'), await readTensors(m.getWeights()), { config: m.config, labels: ['a', 'b', 'c', 'd'] });
    writeModelDir(path.join(tmp, 'run', 'model'), await readTensors(m.getWeights()), { config: m.config });
    m.dispose();
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('reads a model directory and a training run directory (its model/)', async () => {
    for (const src of [path.join(tmp, 'dir'), path.join(tmp, 'run')]) {
      const { model } = await loadModel(src);
      expect(model.numClasses, src).to.equal(4);
      model.dispose();
    }
  });

  it('converts a checkpoint; numClasses replaces the head, dropPathRate rebuilds; labels go with the old head', async () => {
    const { model } = await loadModel(CHECKPOINT);
    const before = tf.memory().numTensors;
    const { model: m2, meta } = await loadModel(path.join(tmp, 'dir'), { numClasses: 9, dropPathRate: 0.2 });
    try {
      expect(model.numClasses).to.be.above(0);
      expect(m2.numClasses).to.equal(9);
      expect(m2.config.dropPathRate).to.equal(0.2);
      expect(meta.labels).to.equal(undefined);
      const { model: m3, meta: meta3 } = await loadModel(path.join(tmp, 'dir'), { numClasses: 4 });
      expect(meta3.labels).to.deep.equal(['a', 'b', 'c', 'd']);
      m3.dispose();
      expect(tf.memory().numTensors - before, 'only m2 is alive').to.equal(m2.getWeights().size);
    } finally {
      model.dispose();
      m2.dispose();
    }
  });

  it('a bare architecture means its default tag, and says so; missing paths are named', async () => {
    const events: LoadProgress[] = [];
    const err = await loadModel('convnext_tiny', { offline: true, cacheDir: path.join(tmp, 'cache'), onProgress: (p) => events.push(p) }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ZooError);
    expect(events[0]).to.deep.include({ status: 'default-tag', arch: 'convnext_tiny' });
    const e2 = await loadModel(path.join(tmp, 'nope.pth')).then(
      () => null,
      (e: unknown) => e,
    );
    expect(e2).to.be.instanceOf(ConvNeXtError);
    expect((e2 as Error).message).to.match(/nope\.pth: no such file or directory/);
    fs.mkdirSync(path.join(tmp, 'empty'));
    const e3 = await loadModel(path.join(tmp, 'empty')).then(
      () => null,
      (e: unknown) => e,
    );
    expect((e3 as Error).message).to.match(/has no model\.json, nor model\/model\.json of a training run, nor encoder\/model\.json/);
  });
});
