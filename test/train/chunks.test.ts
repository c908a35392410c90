/**
 * Chunked compute inside a replica (src/train/data_parallel/chunks.ts, footprint.ts): a share of 8
 * computed in chunks of 2 gives the unchunked loss (1e-5 relative) and gradients (1e-5 absolute),
 * for the classifier with drop path and Mixup/CutMix and for FCMAE; the chunk ranges keep pairs
 * whole; the footprint estimator is monotone and chunks ConvNeXt-T at 224 b16 but not atto at 64
 * b32; a wasm heap abort (the RuntimeError tfjs-backend-wasm throws) becomes OutOfMemoryError; the
 * tensor count does not grow across chunked computes; train, pretrain and bench --train take the
 * option end to end (3 steps chunked equal 3 steps whole, in this thread and with 2 workers).
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { registerWasmTrainingKernels } from '../../src/backend/wasm_gradients';
import { FcmaeError, OutOfMemoryError, TrainOptionError } from '../../src/errors';
import { createModel } from '../../src/factory';
import { Fcmae } from '../../src/fcmae/fcmae';
import { FcmaeTask, FcmaeTaskOptions } from '../../src/fcmae/parallel_task';
import { PretrainOptions, fcmaeFromRun, pretrain } from '../../src/fcmae/pretrain';
import { loadConvertedModel } from '../../src/io/model_dir';
import { TrainOptions, train } from '../../src/train/trainer';
import { runTrainBenchmark } from '../../src/perf/train_benchmark';
import { MODEL_CONFIGS } from '../../src/model/configs';
import { ConvNeXt } from '../../src/model/convnext';
import { chunkLimit, chunkRanges, computeInChunks, heapExhausted, isChunkSize, withHeapError } from '../../src/train/data_parallel/chunks';
import { ClassifyTask, ClassifyTaskOptions } from '../../src/train/data_parallel/classify_task';
import { activationFloatsPerSample, autoChunkSize, trainFootprintBytes } from '../../src/train/data_parallel/footprint';
import { MicroRef, ShareResult } from '../../src/train/data_parallel/task';
import { validateTrainOptions, withTrainDefaults } from '../../src/train/options';
import { expectUserError, onBackend, randn, runCli, useTmpDir, writeColourFolder, tinyPretrainOptions } from '../helpers';
import { assignWeights, randomWeights } from '../random_weights';

/** WebAssembly.RuntimeError (the ES2022 lib has no WebAssembly types: src/backend/webassembly.ts). */
const RuntimeError = (globalThis as unknown as { WebAssembly: { RuntimeError: new (message: string) => Error } }).WebAssembly.RuntimeError;

/** What tfjs-backend-wasm 4.22 throws when emscripten aborts (its abort(): new RuntimeError("Aborted(" + what + ")" + a hint)). */
const wasmAbort = () => new RuntimeError('Aborted(). Build with -sASSERTIONS for more info.');

const TINY = { version: 1 as const, depths: [1, 1, 2, 1] as [number, number, number, number], dims: [8, 16, 16, 24] as [number, number, number, number] };

async function gradArrays(r: ShareResult): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, g] of r.grads) out.set(k, (await g.data()) as Float32Array);
  tf.dispose([...r.grads.values()]);
  return out;
}

function expectSameResult(a: ShareResult, b: ShareResult, ga: Map<string, Float32Array>, gb: Map<string, Float32Array>): void {
  expect(a.n).to.equal(b.n);
  expect(a.correct).to.equal(b.correct);
  expect(Math.abs(a.lossSum - b.lossSum), `loss ${a.lossSum} vs ${b.lossSum}`).to.be.at.most(1e-5 * Math.abs(b.lossSum));
  expect([...ga.keys()].sort()).to.deep.equal([...gb.keys()].sort());
  let worst = 0;
  let scale = 0;
  for (const [k, x] of ga) {
    const y = gb.get(k)!;
    for (let i = 0; i < x.length; i++) {
      worst = Math.max(worst, Math.abs(x[i] - y[i]));
      scale = Math.max(scale, Math.abs(y[i]));
    }
  }
  expect(scale, 'gradients are not all zero').to.be.greaterThan(1e-3);
  expect(worst, 'max |chunked - whole| gradient').to.be.at.most(1e-5);
}

describe('chunked compute: helpers', () => {
  it('chunk ranges hold whole aligned pairs, at most the limit', () => {
    const seq = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
    expect(chunkRanges(seq(0, 8), 2)).to.deep.equal([
      [0, 2],
      [2, 4],
      [4, 6],
      [6, 8],
    ]);
    expect(chunkRanges(seq(4, 11), 4)).to.deep.equal([
      [0, 4],
      [4, 7],
    ]);
    expect(chunkRanges(seq(0, 8), Infinity)).to.deep.equal([[0, 8]]);
    // Global 2 skipped (its partner 3 is alone): 0 1 | 3 4 5 ... with limit 2 never splits 4/5.
    expect(chunkRanges([0, 1, 3, 4, 5, 6, 7], 2)).to.deep.equal([
      [0, 2],
      [2, 3],
      [3, 5],
      [5, 7],
    ]);
    // Limit 4 with an unpaired sample: 3 joins 0 1, then 4 5 6 7.
    expect(chunkRanges([0, 1, 3, 4, 5, 6, 7], 4)).to.deep.equal([
      [0, 3],
      [3, 7],
    ]);
    expect(chunkRanges([], 2)).to.deep.equal([]);
  });

  it('chunk sizes: even numbers or auto; auto chunks only on wasm', () => {
    for (const v of ['auto', 2, 8, 64]) expect(isChunkSize(v), String(v)).to.equal(true);
    for (const v of [0, 1, 3, 2.5, -2, 'big', NaN, null]) expect(isChunkSize(v), String(v)).to.equal(false);
    expect(chunkLimit(6, 'cpu', () => 2)).to.equal(6);
    expect(chunkLimit('auto', 'cpu', () => 2)).to.equal(Infinity);
    expect(chunkLimit(undefined, 'webgpu', () => 2)).to.equal(Infinity);
    expect(chunkLimit(undefined, 'wasm', () => 10)).to.equal(10);
    const base = withTrainDefaults({ data: 'd', arch: 'convnext_atto', epochs: 1 });
    expect(() => validateTrainOptions({ ...base, chunkSize: 3 })).to.throw(TrainOptionError, /^chunkSize must be 'auto' or an even integer >= 2, got 3/);
    expect(() => validateTrainOptions({ ...base, chunkSize: 'auto' })).to.not.throw();
  });

  it('the footprint estimate is monotone; ConvNeXt-T 224 b16 gets chunks, atto 64 b32 none', () => {
    const tiny = MODEL_CONFIGS.convnext_tiny;
    const atto = MODEL_CONFIGS.convnext_atto;
    for (const c of [tiny, atto]) {
      for (const s of [64, 128, 224]) {
        expect(trainFootprintBytes(c, s, 8)).to.be.greaterThan(trainFootprintBytes(c, s, 4));
        expect(trainFootprintBytes(c, s + 32, 4)).to.be.greaterThan(trainFootprintBytes(c, s, 4));
      }
      expect(autoChunkSize(c, 256)).to.be.at.most(autoChunkSize(c, 224));
    }
    expect(activationFloatsPerSample(tiny, 224)).to.be.greaterThan(activationFloatsPerSample(atto, 224));
    const t = autoChunkSize(tiny, 224);
    expect(t, 'ConvNeXt-T 224 chunk').to.be.below(16);
    expect(t).to.be.at.least(4);
    expect(t % 2).to.equal(0);
    expect(autoChunkSize(atto, 64), 'atto 64 chunk').to.be.at.least(32);
    // The chosen chunk fits the budget, two more samples would not.
    expect(trainFootprintBytes(tiny, 224, t)).to.be.at.most(0.7 * 4294901760);
    expect(trainFootprintBytes(tiny, 224, t + 2)).to.be.greaterThan(0.7 * 4294901760);
    // FCMAE: the decoder adds to the count.
    const v2 = MODEL_CONFIGS.convnextv2_atto;
    expect(activationFloatsPerSample(v2, 224, { dim: 512, depth: 1, patch: 32 })).to.be.greaterThan(activationFloatsPerSample(v2, 224));
  });

  it("recognises tfjs-backend-wasm's abort and names the fixes", async () => {
    expect(heapExhausted(wasmAbort())).to.equal(true);
    expect(heapExhausted(new RangeError('WebAssembly.Memory.grow(): Maximum memory size exceeded'))).to.equal(true);
    expect(heapExhausted(new Error('Aborted()'))).to.equal(false);
    expect(heapExhausted(new RuntimeError('unreachable'))).to.equal(false);
    expect(heapExhausted('Aborted()')).to.equal(false);
    const fixes = { chunkSize: 'chunkSize', batchSize: 'batchSize', accumSteps: 'accumSteps', workers: 'workers' };
    let e: unknown = null;
    await withHeapError({ chunk: 16, share: 16, imageSize: 224 }, fixes, async () => {
      throw wasmAbort();
    }).catch((x: unknown) => (e = x));
    expect(e).to.be.instanceOf(OutOfMemoryError);
    const m = (e as Error).message;
    for (const part of ['4 GB WebAssembly heap', '16 samples at once', '224x224', 'chunkSize', 'an even number below 16', 'accumSteps', 'workers', 'Aborted()'])
      expect(m).to.include(part);
    const flags = (e as OutOfMemoryError).renamed({ chunkSize: '--chunk-size', batchSize: '--batch-size', accumSteps: '--accum', workers: '--workers' });
    expect(flags.message).to.include('--chunk-size').and.include('--accum').and.include('--workers').and.not.include('accumSteps');
    // Other errors pass through unchanged.
    const other = new Error('boom');
    await withHeapError({ chunk: 2, share: 2, imageSize: 32 }, fixes, async () => {
      throw other;
    }).catch((x: unknown) => expect(x).to.equal(other));
  });

  it('the CLI refuses a bad --chunk-size naming the flag, and shows the default', () => {
    expectUserError(runCli('bench', '--train', '--arch', 'convnext_atto', '--chunk-size', '3'), /--chunk-size.*'auto' or an even integer >= 2/);
    const help = runCli('train', '--help');
    expect(help.stdout).to.match(/--chunk-size <n>[\s\S]*?\(default: "auto"\)/);
  });

  it("pretrain refuses a chunk size with grnStats 'batch'", async () => {
    const o = { data: '/nonexistent', arch: 'convnextv2_atto', out: '/tmp/x', epochs: 1, batchSize: 8, imageSize: 64 };
    await pretrain({ ...o, grnStats: 'batch', chunkSize: 4 }).then(
      () => expect.fail('resolved'),
      (e: Error) => {
        expect(e).to.be.instanceOf(FcmaeError);
        expect(e.message).to.match(/^chunkSize 4: grnStats 'batch' pools GRN statistics over the whole batch/);
      },
    );
    await pretrain({ ...o, chunkSize: 5 }).then(
      () => expect.fail('resolved'),
      (e: Error) => expect(e.message).to.match(/^chunkSize must be 'auto' or an even integer >= 2, got 5/),
    );
  });
});

describe('chunked compute [wasm]', function () {
  this.timeout(120000);
  onBackend('wasm', registerWasmTrainingKernels);

  const SIZE = 32;
  const N = 8;

  function classifier(): ConvNeXt {
    const model = createModel({ ...TINY, numClasses: 5, dropPathRate: 0.5 }, { seed: 3 }) as ConvNeXt;
    assignWeights(model, randomWeights(model, 'chunks'));
    return model;
  }

  function classifyOptions(model: ConvNeXt, chunkSize: number): ClassifyTaskOptions {
    return {
      config: model.config,
      samples: null,
      batchSize: N,
      seed: 11,
      transform: { size: SIZE },
      mean: [0, 0, 0],
      std: [1, 1, 1],
      labelSmoothing: 0.1,
      mixup: 0.8,
      cutmix: 1.0,
      trainable: [...model.getWeights().keys()],
      chunkSize,
    };
  }

  it('a classifier share of 8 in chunks of 2 (and of 6 + 2) equals the whole share (drop path, mixup/cutmix)', async () => {
    const model = classifier();
    try {
      const whole = new ClassifyTask(model, classifyOptions(model, 8), () => undefined);
      expect(whole.chunkLimit).to.equal(8);
      // Steps 0-3 draw both Mixup and CutMix (switch probability 0.5), each with its own drop-path masks.
      for (const [chunk, steps] of [
        [2, 4],
        [6, 1],
      ]) {
        const chunked = new ClassifyTask(model, classifyOptions(model, chunk), () => undefined);
        for (let step = 0; step < steps; step++) {
          const ref: MicroRef = { epoch: 0, step, micro: 0, batch: 0 };
          const a = await whole.compute(await whole.load(ref, [0, N]), ref);
          const b = await chunked.compute(await chunked.load(ref, [0, N]), ref);
          expectSameResult(b, a, await gradArrays(b), await gradArrays(a));
          expect(a.lossSum).to.be.greaterThan(0);
        }
      }
    } finally {
      model.dispose();
    }
  });

  it('the tensor count does not grow across chunked computes, nor after a heap abort', async () => {
    const model = classifier();
    try {
      const task = new ClassifyTask(model, classifyOptions(model, 2), () => undefined);
      const ref: MicroRef = { epoch: 0, step: 0, micro: 0, batch: 0 };
      const share = await task.load(ref, [0, N]);
      const run = async () => tf.dispose([...(await task.compute({ ...share, x: share.x.slice() }, ref)).grads.values()]);
      await run();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) await run();
      expect(tf.memory().numTensors).to.equal(before);

      // Injected: the third chunk's forward aborts as the wasm module does when its heap is full.
      const forward = model.forward.bind(model);
      let calls = 0;
      model.forward = (x, o) => {
        if (++calls === 3) throw wasmAbort();
        return forward(x, o);
      };
      let err: unknown = null;
      await task.compute({ ...share, x: share.x.slice() }, ref).catch((e: unknown) => (err = e));
      model.forward = forward;
      expect(err).to.be.instanceOf(OutOfMemoryError);
      expect((err as Error).message)
        .to.include('2 samples at once (a chunk of a share of 8) at 32x32 px')
        .and.include('accumSteps');
      expect(tf.memory().numTensors, 'the finished chunks are disposed').to.equal(before);
    } finally {
      model.dispose();
    }
  });

  it('an FCMAE share of 8 in chunks of 2 equals the whole share', async () => {
    const arch = {
      version: 2 as const,
      depths: [1, 1, 1, 1] as [number, number, number, number],
      dims: [8, 8, 16, 16] as [number, number, number, number],
      name: 'v2test',
    };
    const f = new Fcmae(arch, { decoderDim: 16, decoderDepth: 1, maskRatio: 0.5, seed: 5 });
    try {
      const o = (chunkSize: number): FcmaeTaskOptions => ({
        config: f.encoderModel.config,
        decoderDim: 16,
        decoderDepth: 1,
        maskRatio: 0.5,
        grnStats: 'image',
        samples: [],
        batchSize: N,
        imageSize: 64,
        seed: 2,
        chunkSize,
      });
      const whole = new FcmaeTask(f, o(8), () => undefined);
      const chunked = new FcmaeTask(f, o(2), () => undefined);
      expect(new FcmaeTask(f, { ...o(2), grnStats: 'batch' }, () => undefined).chunkLimit, "grnStats 'batch': no chunks").to.equal(Infinity);
      const ref: MicroRef = { epoch: 1, step: 3, micro: 0, batch: 0 };
      const share = {
        x: randn(N * 64 * 64 * 3, 'fcmae-chunks'),
        shape: [N, 64, 64, 3] as [number, number, number, number],
        positions: [0, 1, 2, 3, 4, 5, 6, 7],
      };
      const a = await whole.compute(share, ref);
      const b = await chunked.compute(share, ref);
      const before = tf.memory().numTensors;
      expectSameResult(b, a, await gradArrays(b), await gradArrays(a));
      expect(tf.memory().numTensors).to.equal(before - 2 * a.grads.size);
    } finally {
      f.dispose();
    }
  });

  it('computeInChunks weights each chunk by its count', async () => {
    const results: ShareResult[] = [
      { grads: new Map([['w', tf.tensor1d([1, 2])]]), n: 2, lossSum: 3, correct: 1 },
      { grads: new Map([['w', tf.tensor1d([4, 8])]]), n: 1, lossSum: 5, correct: 1 },
    ];
    let i = 0;
    const r = await computeInChunks(
      [
        [0, 2],
        [2, 3],
      ],
      async () => results[i++],
    );
    expect(r.n).to.equal(3);
    expect(r.lossSum).to.equal(8);
    expect(r.correct).to.equal(2);
    const w = await r.grads.get('w')!.data();
    expect(w[0]).to.be.closeTo((2 * 1 + 4) / 3, 1e-6);
    expect(w[1]).to.be.closeTo((2 * 2 + 8) / 3, 1e-6);
    tf.dispose([...r.grads.values()]);
  });
});

describe('chunked training runs [wasm]', function () {
  this.timeout(600_000);
  onBackend('wasm', registerWasmTrainingKernels);
  const tmp = useTmpDir('convnext-chunks-');
  let data = '';
  before(() => {
    data = tmp('data');
    writeColourFolder(data, { perClass: 8, seed: 'chunk-data', noise: 120, size: (i) => [40 + i, 36 + (i % 5)] }); // 24 images: 3 steps of 8
  });

  const maxDiff = (a: Map<string, Float32Array>, b: Map<string, Float32Array>) => {
    expect([...a.keys()].sort()).to.deep.equal([...b.keys()].sort());
    let worst = 0;
    for (const [k, x] of a) x.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b.get(k)![i]))));
    return worst;
  };
  const expectRel = (a: number[], b: number[]) => {
    expect(a).to.have.length(b.length);
    a.forEach((v, i) => expect(Math.abs(v - b[i]), `step ${i + 1}: ${v} vs ${b[i]}`).to.be.at.most(1e-5 * Math.abs(b[i])));
  };

  it('train: chunks of 2 give the unchunked losses and weights, in this thread and with 2 workers', async () => {
    const run = async (tag: string, chunkSize: number, workers: number) => {
      const losses: number[] = [];
      const o: TrainOptions = {
        data,
        arch: 'convnext_atto',
        epochs: 1,
        imageSize: 32,
        batchSize: 8,
        lr: 3e-4, // see data_parallel.test.ts: larger lr turns Adam's near-zero gradients' summation noise into > 1e-5
        seed: 7,
        out: tmp(tag),
        workers,
        chunkSize,
        dropPathRate: 0.3,
        mixup: 0.8,
        cutmix: 1,
      };
      // Training forwards in this thread (workers 1): one per chunk.
      const forward = ConvNeXt.prototype.forward;
      let forwards = 0;
      ConvNeXt.prototype.forward = function (this: ConvNeXt, ...args: Parameters<ConvNeXt['forward']>) {
        if (args[1]?.training) forwards++;
        return forward.apply(this, args);
      };
      try {
        await train({ ...o, onEvent: (e) => e.type === 'step' && losses.push(e.loss) });
      } finally {
        ConvNeXt.prototype.forward = forward;
      }
      expect(forwards, `${tag}: training forwards in this thread`).to.equal(workers > 1 ? 0 : (3 * 8) / chunkSize);
      const { model } = await loadConvertedModel(path.join(o.out, 'model'));
      const w = new Map([...model.getWeights()].map(([k, v]) => [k, v.dataSync() as Float32Array]));
      model.dispose();
      return { losses, w };
    };
    const whole = await run('whole', 8, 1);
    expect(whole.losses).to.have.length(3);
    for (const [tag, workers] of [
      ['chunked1', 1],
      ['chunked2', 2],
    ] as const) {
      const c = await run(tag, 2, workers);
      expectRel(c.losses, whole.losses);
      expect(maxDiff(c.w, whole.w), `${tag} weights`).to.be.at.most(1e-5);
    }
  });

  it('train: a heap abort in a step stops the run with OutOfMemoryError, leaving no tensors', async () => {
    const before = tf.memory().numTensors;
    const forward = ConvNeXt.prototype.forward;
    ConvNeXt.prototype.forward = function (this: ConvNeXt, ...args: Parameters<ConvNeXt['forward']>) {
      if (args[1]?.training) throw wasmAbort();
      return forward.apply(this, args);
    };
    let err: unknown = null;
    try {
      await train({ data, arch: 'convnext_atto', epochs: 1, imageSize: 32, batchSize: 8, lr: 1e-3, out: tmp('oom'), workers: 1, chunkSize: 4 }).catch(
        (e: unknown) => (err = e),
      );
    } finally {
      ConvNeXt.prototype.forward = forward;
    }
    expect(err).to.be.instanceOf(OutOfMemoryError);
    expect((err as Error).message).to.match(/4 samples at once \(a chunk of a share of 8\) at 32x32 px; compute fewer samples at once with chunkSize/);
    expect((err as Error).message)
      .to.include('lower batchSize and raise accumSteps')
      .and.include('raise workers');
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('pretrain: chunks of 2 give the unchunked losses and weights', async () => {
    const p = (out: string, chunkSize: number): PretrainOptions => tinyPretrainOptions(data, tmp(out), { workers: 1, chunkSize });
    const losses = async (o: PretrainOptions) => {
      const l: number[] = [];
      const loss = Fcmae.prototype.loss;
      let calls = 0;
      Fcmae.prototype.loss = function (this: Fcmae, ...args: Parameters<Fcmae['loss']>) {
        calls++;
        return loss.apply(this, args);
      };
      try {
        await pretrain({ ...o, onEvent: (e) => e.type === 'step' && l.push(e.loss) });
      } finally {
        Fcmae.prototype.loss = loss;
      }
      expect(calls, 'one loss per chunk').to.equal((3 * 8) / (o.chunkSize as number));
      return l;
    };
    const whole = await losses(p('fw', 8));
    const chunked = await losses(p('fc', 2));
    expect(whole).to.have.length(3);
    expectRel(chunked, whole);
    const [a, b] = [fcmaeFromRun(tmp('fw')), fcmaeFromRun(tmp('fc'))];
    const arrays = (f: typeof a) => new Map([...f.parameters()].map(([k, v]) => [k, v.dataSync() as Float32Array]));
    const d = maxDiff(arrays(b), arrays(a));
    a.dispose();
    b.dispose();
    expect(d).to.be.at.most(1e-5);
  });

  it('bench --train computes a batch larger than chunkSize in chunks, in this thread', async () => {
    const before = tf.memory().numTensors;
    const r = await runTrainBenchmark({ arch: 'convnext_atto', imageSize: 32, batch: 8, chunkSize: 4, backend: 'wasm', reps: 1, warmup: 0 });
    expect(r.workers).to.equal(1);
    expect(r.chunk_size).to.equal(4);
    expect(Number.isFinite(r.final_loss) && r.final_loss > 0).to.equal(true);
    expect(r.wasm_heap_mb).to.be.above(0);
    expect(r.num_tensors).to.equal(before);
    const whole = await runTrainBenchmark({ arch: 'convnext_atto', imageSize: 32, batch: 8, backend: 'wasm', reps: 1, warmup: 0 });
    expect(whole.chunk_size, "atto 32 b8 'auto': no chunks").to.equal(null);
  });
});
