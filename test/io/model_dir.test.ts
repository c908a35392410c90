/** Model directories: sharding, atomic replacement, loading from disk and over http. */
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { createModel } from '../../src/factory';
import { loadConvertedModel } from '../../src/io/model_dir';
import { ModelFormatError } from '../../src/errors';
import { SHARD_BYTES, writeModelDir } from '../../src/io/model_dir';
import { readTensors } from '../../src/util/tensors';
import { expectClose, useBackend } from '../helpers';

describe('model directory writer and loader', function () {
  this.timeout(120_000);
  let tmp: string;
  before(async () => {
    await useBackend('wasm');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-dir-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('writes 4 MiB shards that reload to the same weights and logits (convnext_atto, 14.8 MB)', async () => {
    const m = createModel('convnext_atto', { seed: 1 });
    const out = path.join(tmp, 'atto');
    writeModelDir(out, await readTensors(m.getWeights()), { config: m.config, labels: undefined });
    const shards = fs.readdirSync(out).filter((f) => f.endsWith('.bin'));
    const bytes = m.numParams() * 4;
    expect(shards).to.have.length(Math.ceil(bytes / SHARD_BYTES));
    expect(shards.map((s) => fs.statSync(path.join(out, s)).size).filter((s) => s !== SHARD_BYTES)).to.have.length(1);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8'));
    expect(json.weightsManifest[0].weights[0]).to.deep.equal({ name: 'stem.conv.weight', shape: [4, 4, 3, 40], dtype: 'float32' });
    const { model } = await loadConvertedModel(out);
    const x = tf.randomNormal([1, 32, 32, 3]) as tf.Tensor4D;
    expectClose(model.forward(x).dataSync(), m.forward(x).dataSync(), 0, 0);

    model.dispose();
    m.dispose();
    x.dispose();
  });

  it('a failed write leaves no model.json and keeps the previous model intact', async () => {
    const m = createModel({ version: 1, depths: [1, 1, 1, 1], dims: [8, 8, 8, 8], numClasses: 3 });
    const out = path.join(tmp, 'atomic');
    writeModelDir(out, await readTensors(m.getWeights()), { config: m.config });
    const before = fs.readFileSync(path.join(out, 'model.json'), 'utf8');
    // Make the final rename impossible: model.json.tmp can't replace a directory named model.json.
    const blocked = path.join(tmp, 'blocked');
    fs.mkdirSync(path.join(blocked, 'model.json'), { recursive: true });
    const weights = await readTensors(m.getWeights());
    expect(() => writeModelDir(blocked, weights, { config: m.config })).to.throw(/cannot write model to/);
    expect(fs.readdirSync(blocked)).to.deep.equal(['model.json']); // only the directory we made; no shards or temp files
    // A new model replaces the old one in place; the old shards are removed after the switch.
    m.resetClassifier(5);
    writeModelDir(out, await readTensors(m.getWeights()), { config: m.config });
    expect(fs.readFileSync(path.join(out, 'model.json'), 'utf8')).to.not.equal(before);
    expect(fs.readdirSync(out).filter((f) => f.endsWith('.bin'))).to.have.length(1);
    const { model } = await loadConvertedModel(out);
    expect(model.numClasses).to.equal(5);
    model.dispose();
    m.dispose();
  });

  it('names the problem for a missing dir, a foreign model.json and a truncated shard', async () => {
    let err: Error | undefined;
    await loadConvertedModel(path.join(tmp, 'nope')).catch((e) => (err = e));
    expect(err).to.be.instanceOf(ModelFormatError);
    expect(err!.message).to.match(/nope: no such file/);
    const foreign = path.join(tmp, 'foreign');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'model.json'), JSON.stringify({ modelTopology: {}, weightsManifest: [] }));
    err = undefined;
    await loadConvertedModel(foreign).catch((e) => (err = e));
    expect(err!.message).to.match(/not a convnext-tfjs model\.json/);
    const m = createModel({ version: 2, depths: [1, 1, 1, 1], dims: [8, 8, 8, 8], numClasses: 3 });
    const cut = path.join(tmp, 'cut');
    writeModelDir(cut, await readTensors(m.getWeights()), { config: m.config });
    m.dispose();
    const shard = fs.readdirSync(cut).find((f) => f.endsWith('.bin'))!;
    fs.truncateSync(path.join(cut, shard), 100);
    err = undefined;
    await loadConvertedModel(cut).catch((e) => (err = e));
    expect(err).to.be.instanceOf(ModelFormatError);
    expect(err!.message).to.match(/weight shards hold 100 bytes, the manifest describes \d+/);
  });

  it('loads over http from a local server (tf.io.http conventions)', async () => {
    const m = createModel({ version: 2, depths: [1, 1, 2, 1], dims: [8, 16, 16, 24], numClasses: 4 }, { seed: 9 });
    const out = path.join(tmp, 'served');
    writeModelDir(out, await readTensors(m.getWeights()), { config: m.config, labels: ['a', 'b', 'c', 'd'] });
    const server = http.createServer((req, res) => {
      const file = path.join(out, req.url ?? '');
      if (!fs.existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200).end(fs.readFileSync(file));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const { model, meta } = await loadConvertedModel(`http://127.0.0.1:${port}/model.json`);
      expect(meta.labels).to.deep.equal(['a', 'b', 'c', 'd']);
      const x = tf.randomNormal([1, 32, 32, 3]) as tf.Tensor4D;
      expectClose(model.forward(x).dataSync(), m.forward(x).dataSync(), 0, 0);
      model.dispose();
      x.dispose();
      let err: Error | undefined;
      await loadConvertedModel(`http://127.0.0.1:${port}/missing/model.json`).catch((e) => (err = e));
      expect(err).to.be.instanceOf(ModelFormatError);
      expect(err!.message).to.match(/missing\/model\.json: could not load.*404/);
    } finally {
      server.close();
      m.dispose();
    }
  });
});
