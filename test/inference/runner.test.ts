/**
 * Runners and the batch pipeline: a pooled Predictor and evaluate() give the results of this
 * thread, in input order, with bad files reported in place; the pipeline keeps its window and order.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { ConfigError } from '../../src/errors';
import { Predictor, pipeline, resolveWorkers, runTolerant } from '../../src/inference';
import { createModel } from '../../src/factory';
import { evaluate } from '../../src/train/evaluate';
import { encodePng } from '../../src/data/png';
import { maxAbsDiff, randn, useBackend } from '../helpers';
import { assignWeights, randomWeights } from '../random_weights';

const IMAGES = path.resolve(__dirname, '../../../test/fixtures/images');

describe('batch runners', function () {
  this.timeout(120_000);

  describe('pipeline', () => {
    it('keeps at most `concurrency` batches in flight and hands results over in order', async () => {
      let inFlight = 0;
      let most = 0;
      const seen: number[] = [];
      let i = 0;
      await pipeline(
        3,
        async () => (i < 10 ? i++ : undefined),
        async (b) => {
          inFlight++;
          most = Math.max(most, inFlight);
          await new Promise((r) => setTimeout(r, (10 - b) * 2)); // later batches finish first
          inFlight--;
          return b * 10;
        },
        (b, r) => {
          expect(r).to.equal(b * 10);
          seen.push(b);
        },
      );
      expect(seen).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(most).to.equal(3);
    });

    it('rejects with the first failing batch', async () => {
      let i = 0;
      const p = pipeline(
        2,
        async () => (i < 5 ? i++ : undefined),
        async (b) => {
          if (b === 2) throw new Error('batch 2 failed');
          return b;
        },
        () => {},
      );
      await p.then(
        () => expect.fail('resolved'),
        (e: Error) => expect(e.message).to.equal('batch 2 failed'),
      );
    });

    it("resolves 'auto' workers: this thread for one batch, every core (at most one per batch) for more", () => {
      expect(resolveWorkers('auto', 8, 8)).to.equal(1);
      expect(resolveWorkers('auto', 9, 8)).to.equal(Math.min(os.availableParallelism(), 2));
      expect(resolveWorkers(3, 1, 8)).to.equal(3);
      expect(() => resolveWorkers(0, 1, 1)).to.throw(ConfigError, /workers must be a positive integer or 'auto'/);
    });
  });

  describe('on a worker pool', () => {
    let local: Predictor;
    let pooled: Predictor;
    before(async () => {
      await useBackend('wasm');
      const model = createModel('convnext_atto');
      assignWeights(model, randomWeights(model, 'runner'));
      local = new Predictor(model, {}, { batchSize: 2, preprocessing: { inputSize: 64 } });
      pooled = new Predictor(model, {}, { batchSize: 2, workers: 2, preprocessing: { inputSize: 64 } });
    });
    after(async () => {
      await local.dispose(); // disposes the shared model; the pool is pooled's
      await pooled.dispose().catch(() => {});
    });

    it('classify and embed equal this thread, in input order, bad files in place', async () => {
      const files = ['chelsea.png', 'rocket.jpg', 'truncated.jpg', 'hubble.jpg', 'chelsea.png', 'missing.png', 'rocket.jpg'].map((f) => path.join(IMAGES, f));
      const collect = async (p: Predictor, job: 'classify' | 'embed') => {
        const out: string[] = [];
        const values: Float32Array[] = [];
        const onItem = (r: { index: number; value?: unknown; error?: Error }, value: () => Float32Array) => {
          out.push(`${r.index}:${r.error ? 'error' : 'ok'}`);
          if (!r.error) values.push(value());
        };
        if (job === 'classify') {
          await runTolerant(p, files, p.classifyJob({ topk: 3 }), (r) => onItem(r, () => Float32Array.from(('value' in r ? r.value : []).map((v) => v.prob))));
        } else {
          await runTolerant(p, files, p.embedJob(), (r) => onItem(r, () => ('value' in r ? r.value : new Float32Array(0))));
        }
        return { out, values };
      };
      expect((await pooled.runner(files.length)).concurrency).to.equal(2);
      for (const job of ['classify', 'embed'] as const) {
        const a = await collect(local, job);
        const b = await collect(pooled, job);
        expect(b.out).to.deep.equal(['0:ok', '1:ok', '2:error', '3:ok', '4:ok', '5:error', '6:ok']);
        expect(b.out).to.deep.equal(a.out);
        b.values.forEach((v, i) => expect(maxAbsDiff(v, a.values[i]), `${job} ${i}`).to.be.at.most(1e-5));
      }
    });

    it('evaluate() gives the same metrics on 2 workers as in this thread', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-eval-'));
      try {
        const samples = Array.from({ length: 7 }, (_, i) => {
          const data = Uint8Array.from(randn(40 * 40 * 3, `img${i}`, 60, 128), (v) => Math.max(0, Math.min(255, v)));
          const file = path.join(dir, `${i}.png`);
          fs.writeFileSync(file, encodePng({ width: 40, height: 40, data }));
          return { file, label: i % 3 };
        });
        const model = local.model;
        const o = { imageSize: 64, batchSize: 2 };
        const before = tf.memory().numTensors;
        const a = await evaluate(model, samples, 1000, { ...o, workers: 1 });
        const b = await evaluate(model, samples, 1000, { ...o, workers: 2 });
        expect(tf.memory().numTensors).to.equal(before);
        expect(b.n).to.equal(7);
        expect([b.top1, b.top5]).to.deep.equal([a.top1, a.top5]);
        expect(b.loss).to.be.closeTo(a.loss, 1e-5 * Math.max(1, Math.abs(a.loss)));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
