/**
 * Data-parallel training (src/train/data_parallel): the worker count does not change a run. Three
 * optimizer steps with 1 worker (this thread) and 2 worker threads give the same losses (1e-5
 * relative) and weights (1e-5 absolute) with drop path, mixup/cutmix, label smoothing and EMA on,
 * with gradient accumulation, with freezing and layer decay, and for FCMAE pretraining; a 2-worker
 * run resumed from its checkpoint equals an uninterrupted one bit for bit; a worker that dies is a TrainWorkerError
 * naming it and the last checkpoint resumes; the main thread's tensor count does not grow per step.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { registerWasmTrainingKernels } from '../../src/backend/wasm_gradients';
import { OutOfMemoryError, TrainWorkerError } from '../../src/errors';
import { createModel } from '../../src/factory';
import { fcmaeFromRun, pretrain, PretrainOptions } from '../../src/fcmae/pretrain';
import { loadConvertedModel } from '../../src/io/model_dir';
import { pairPartners, shareRange } from '../../src/train/data_parallel/task';
import { resolveTrainWorkers } from '../../src/train/data_parallel/engine';
import { train, TrainOptions } from '../../src/train/trainer';
import { runTrainBenchmark } from '../../src/perf/train_benchmark';
import { readSafetensors } from '../../weights-converter/safetensors';
import { onBackend, useTmpDir, writeColourFolder, tinyPretrainOptions } from '../helpers';

/** 3 classes of noisy colours, sizes 40-47 x 36-40. */
function writeImages(dir: string, perClass: number): void {
  writeColourFolder(dir, { perClass, seed: 'dp-data', noise: 120, size: (i) => [40 + i, 36 + (i % 5)] });
}

function expectRel(a: number[], b: number[], rtol: number): void {
  expect(a).to.have.length(b.length);
  a.forEach((v, i) => expect(Math.abs(v - b[i]), `step ${i + 1}: ${v} vs ${b[i]}`).to.be.at.most(rtol * Math.abs(b[i])));
}

function maxAbsDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): { worst: number; name: string } {
  expect([...a.keys()].sort()).to.deep.equal([...b.keys()].sort());
  let worst = 0;
  let name = '';
  for (const [k, x] of a) {
    const y = b.get(k)!;
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i] - y[i]);
      if (d > worst) [worst, name] = [d, k];
    }
  }
  return { worst, name };
}

/** The model/ directory's weights as plain arrays. */
async function modelWeights(dir: string): Promise<Map<string, Float32Array>> {
  const { model } = await loadConvertedModel(path.join(dir, 'model'));
  const out = new Map([...model.getWeights()].map(([k, v]) => [k, v.dataSync() as Float32Array]));
  model.dispose();
  return out;
}

/** A checkpoint's tensors under a prefix ('model.', 'ema.', 'opt.m.'). */
function checkpointGroup(dir: string, prefix: string): Map<string, Float32Array> {
  const { tensors } = readSafetensors(path.join(dir, 'checkpoint.safetensors'));
  const out = new Map<string, Float32Array>();
  for (const [k, v] of tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v.data as Float32Array);
  return out;
}

describe('data-parallel helpers', () => {
  it('shares are aligned pairs covering the batch once; partners stay inside a share', () => {
    for (const n of [1, 2, 5, 8, 9, 32])
      for (const w of [1, 2, 3, 4]) {
        const covered: number[] = [];
        for (let k = 0; k < w; k++) {
          const [a, b] = shareRange(n, k, w);
          expect(a % 2, `n ${n} w ${w} k ${k}`).to.equal(0);
          for (let i = a; i < b; i++) covered.push(i);
        }
        expect(covered).to.deep.equal(Array.from({ length: n }, (_, i) => i));
      }
    expect(shareRange(32, 0, 2)).to.deep.equal([0, 16]);
    expect(shareRange(32, 1, 2)).to.deep.equal([16, 32]);
    // positions 4, 5, 7 survive decoding (6 was skipped): 4 <-> 5, 7 alone
    const p = pairPartners([4, 5, 7]);
    expect([0, 1, 2].map(p)).to.deep.equal([1, 0, 2]);
    expect(resolveTrainWorkers(2, 3)).to.equal(2);
    expect(() => resolveTrainWorkers(3, 4)).to.throw(/workers 3 exceeds the 2 sample pair/);
    expect(resolveTrainWorkers('auto', 2)).to.equal(1);
  });
});

describe('data-parallel training [wasm]', function () {
  this.timeout(600_000);
  onBackend('wasm', registerWasmTrainingKernels);
  const tmp = useTmpDir('convnext-dp-');
  let data = '';
  before(() => {
    data = tmp('data');
    writeImages(data, 8); // 24 images: 3 steps of 8
  });
  after(() => delete process.env.CONVNEXT_TEST_WORKER_FAULT);

  const base = (out: string, workers: number): TrainOptions => ({
    data,
    arch: 'convnext_atto',
    epochs: 1,
    imageSize: 32,
    batchSize: 8,
    lr: 1e-3,
    seed: 7,
    out: tmp(out),
    workers,
  });

  async function run(o: TrainOptions): Promise<{ losses: number[]; tensors: number[] }> {
    const losses: number[] = [];
    const tensors: number[] = [];
    await train({
      ...o,
      onEvent: (e) => {
        if (e.type !== 'step') return;
        losses.push(e.loss);
        tensors.push(tf.memory().numTensors);
      },
    });
    return { losses, tensors };
  }

  /** Trains 3 steps with 1 and with 2 workers (out dirs <tag>1, <tag>2); asserts equal losses and final weights. */
  async function expectSameRuns(
    tag: string,
    opts: Partial<TrainOptions>,
  ): Promise<{ one: Awaited<ReturnType<typeof run>>; two: Awaited<ReturnType<typeof run>> }> {
    const one = await run({ ...base(`${tag}1`, 1), ...opts });
    const two = await run({ ...base(`${tag}2`, 2), ...opts });
    expect(one.losses).to.have.length(3);
    expectRel(two.losses, one.losses, 1e-5);
    const w = maxAbsDiff(await modelWeights(tmp(`${tag}2`)), await modelWeights(tmp(`${tag}1`)));
    expect(w.worst, w.name).to.be.at.most(1e-5);
    return { one, two };
  }

  it('1 vs 2 workers: the same losses and weights with drop path, mixup/cutmix, label smoothing and EMA', async () => {
    // lr 3e-4: the few weights whose first gradient is a near-cancelling sum (|g| ~ Adam's eps 1e-8)
    // move by lr x g / (|g| + eps), which turns float32 summation noise into ~2% of lr (measured:
    // one element of 3.7M off by 2.0e-5 at lr 1e-3, 1.0e-5 at 5e-4; the next worst 8e-7).
    const opts = { lr: 3e-4, dropPathRate: 0.3, mixup: 0.8, cutmix: 1, labelSmoothing: 0.1, emaDecay: 0.9 };
    const { one, two } = await expectSameRuns('w', opts);
    const e = maxAbsDiff(checkpointGroup(tmp('w2'), 'ema.'), checkpointGroup(tmp('w1'), 'ema.'));
    expect(e.worst, e.name).to.be.at.most(1e-5);
    // Real training happened: the weights moved from the seeded init.
    const init = createModel('convnext_atto', { numClasses: 3, seed: 7 });
    const moved = maxAbsDiff(await modelWeights(tmp('w1')), new Map([...init.getWeights()].map(([k, v]) => [k, v.dataSync() as Float32Array])));
    init.dispose();
    expect(moved.worst).to.be.above(1e-4);
    // The main thread's tensors do not grow per step (in this thread or with workers).
    for (const t of [one.tensors, two.tensors]) expect(new Set(t.slice(1)).size, `numTensors per step: ${t}`).to.equal(1);
    expect(two.tensors[2]).to.equal(two.tensors[0]);
  });

  it('1 vs 2 workers with gradient accumulation (2 micro-batches of 4 per step)', async () => {
    const opts = { batchSize: 4, accumSteps: 2, dropPathRate: 0.1 };
    await expectSameRuns('a', opts);
  });

  it('1 vs 2 workers with freezing and layer-wise lr decay; with 2 workers a resumed run equals an uninterrupted one bit for bit', async () => {
    const opts = { freeze: 2, layerDecay: 0.8, emaDecay: 0.9, dropPathRate: 0.1 };
    await expectSameRuns('f', opts);
    // The frozen stem kept its init (the workers' update never touches a frozen parameter).
    const init = createModel('convnext_atto', { numClasses: 3, seed: 7 });
    const stem = init.getWeights().get('stem.conv.weight')!.dataSync();
    init.dispose();
    expect(Array.from((await modelWeights(tmp('f2'))).get('stem.conv.weight')!)).to.deep.equal(Array.from(stem));
    // Resume: the moments, EMA and weights a 2-worker run checkpoints are what it trains on.
    const two = { ...base('whole', 2), ...opts, epochs: 2 };
    await train(two);
    await train({ ...two, out: tmp('halves'), stopAfterEpochs: 1 });
    await train({ ...two, out: tmp('halves'), resume: true });
    for (const g of ['model.', 'ema.', 'opt.m.', 'opt.v.']) {
      const d = maxAbsDiff(checkpointGroup(tmp('halves'), g), checkpointGroup(tmp('whole'), g));
      expect(d.worst, `${g}${d.name}`).to.equal(0);
    }
  });

  it('a worker that dies is a TrainWorkerError naming it; the last checkpoint loads and resumes', async () => {
    /** What train(o) throws with CONVNEXT_TEST_WORKER_FAULT set to `fault`. */
    const failureOf = async (fault: string, o: TrainOptions): Promise<unknown> => {
      process.env.CONVNEXT_TEST_WORKER_FAULT = fault;
      try {
        await train(o);
        return undefined;
      } catch (e) {
        return e;
      } finally {
        delete process.env.CONVNEXT_TEST_WORKER_FAULT;
      }
    };
    const o = { ...base('killed', 2), epochs: 2 };
    let err = await failureOf('1:5:exit', o); // worker 1 exits at step 5 (epoch 2)
    expect(err).to.be.instanceOf(TrainWorkerError);
    expect((err as TrainWorkerError).workerIndex).to.equal(1);
    expect((err as Error).message).to.match(/training worker 1 exited unexpectedly \(code 3\)/);
    const log = fs.readFileSync(path.join(o.out, 'log.jsonl'), 'utf8').trim().split('\n');
    expect(log).to.have.length(1);
    const resumed = await train({ ...o, resume: true });
    expect(resumed.history.map((h) => h.epoch)).to.deep.equal([1, 2]);
    expect(resumed.history[0].train_loss).to.equal(JSON.parse(log[0]).train_loss);

    // A worker that throws names itself and the step as well.
    err = await failureOf('0:2:throw', base('thrown', 2));
    expect(err).to.be.instanceOf(TrainWorkerError);
    expect((err as Error).message).to.match(/training worker 0 failed at step 2: Error: test fault injected/);

    // A replica out of its wasm heap: the OutOfMemoryError itself (its fixes renameable by the CLI), not wrapped.
    err = await failureOf('1:1:oom', base('oom', 2));
    expect(err).to.be.instanceOf(OutOfMemoryError);
    expect((err as OutOfMemoryError).renamed({ workers: '--workers' }).message).to.match(/raise --workers .*test fault injected at step 1/);
  });

  it('FCMAE pretraining: 1 vs 2 workers give the same losses and weights', async () => {
    const p = (out: string, workers: number): PretrainOptions => tinyPretrainOptions(data, tmp(out), { workers });
    const losses = async (o: PretrainOptions) => {
      const l: number[] = [];
      await pretrain({ ...o, onEvent: (e) => e.type === 'step' && l.push(e.loss) });
      return l;
    };
    const one = await losses(p('f1', 1));
    const two = await losses(p('f2', 2));
    expect(one).to.have.length(3);
    expectRel(two, one, 1e-5);
    const [a, b] = [fcmaeFromRun(tmp('f1')), fcmaeFromRun(tmp('f2'))];
    const arrays = (f: typeof a) => new Map([...f.parameters()].map(([k, v]) => [k, v.dataSync() as Float32Array]));
    const w = maxAbsDiff(arrays(b), arrays(a));
    a.dispose();
    b.dispose();
    expect(w.worst, w.name).to.be.at.most(1e-5);
    let err: Error | undefined;
    await pretrain({ ...p('f3', 2), grnStats: 'batch' }).catch((e) => (err = e));
    expect(err?.message).to.match(/grnStats 'batch' pools GRN statistics over the whole batch/);
  });

  it('bench --train with 2 workers times data-parallel steps and leaves no tensors behind', async () => {
    const before = tf.memory().numTensors;
    const r = await runTrainBenchmark({ arch: 'convnext_atto', imageSize: 32, batch: 4, workers: 2, backend: 'wasm', reps: 2, warmup: 1 });
    expect(r.workers).to.equal(2);
    expect(r.step_ms).to.have.length(2);
    expect(r.worker_ms).to.be.above(0);
    expect(r.worker_ms!).to.be.below(Math.max(...r.step_ms));
    expect(Number.isFinite(r.final_loss) && r.final_loss > 0).to.equal(true);
    expect(r.num_tensors).to.equal(before);
  });
});
