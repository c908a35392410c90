/**
 * InferencePool against the single-threaded model: same numbers, FIFO dispatch, errors from inside
 * workers, crashed workers, and a dispose that leaves nothing running (checked in a child process).
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { ConfigError, ShapeError, WeightsError } from '../../src/errors';
import { ConvNeXt } from '../../src/model';
import { createModel } from '../../src/factory';
import { InferencePool, RunKind, shareWeights } from '../../src/parallel';
import { PoolError } from '../../src/errors';
import { expectClose, randn, useBackend } from '../helpers';
import { assignWeights, randomWeights } from '../random_weights';

const ROOT = path.resolve(__dirname, '../../..');
const TINY = {
  version: 1 as const,
  depths: [1, 1, 2, 1] as [number, number, number, number],
  dims: [8, 16, 24, 32] as [number, number, number, number],
  numClasses: 10,
};

/** The single-threaded answer for a pool run kind. */
function reference(model: ConvNeXt, kind: RunKind, x: Float32Array, shape: number[]): Float32Array {
  const y = tf.tidy(() => {
    const t = tf.tensor4d(x, shape as [number, number, number, number]);
    if (kind === 'embed') return model.embed(t);
    const logits = model.forward(t);
    return kind === 'probs' ? tf.softmax(logits) : logits;
  });
  // Read outside tidy: tidy would walk a returned TypedArray element by element.
  const data = y.dataSync() as Float32Array;
  y.dispose();
  return data;
}

function randomModel(nameOrConfig: Parameters<typeof createModel>[0], seed: string): ConvNeXt {
  const m = createModel(nameOrConfig, { init: 'zeros' });
  assignWeights(m, randomWeights(m, seed));
  return m;
}

/** Runs a script in a fresh node process (from the repo root) and reports how it ended. */
function runChild(script: string, timeoutMs = 60_000): { code: number | null; signal: string | null; ms: number; out: string } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, signal: r.signal, ms: Date.now() - t0, out: `${r.stdout}${r.stderr}` };
}

describe('InferencePool', function () {
  this.timeout(180_000);
  before(() => useBackend('wasm'));

  describe('tiny custom config (wasm)', () => {
    let model: ConvNeXt;
    let pool: InferencePool;
    let tensorsBefore: number;
    const shape = [3, 64, 48, 3];
    const x = randn(3 * 64 * 48 * 3, 'pool/x');

    before(async () => {
      model = randomModel(TINY, 'pool/tiny');
      tensorsBefore = tf.memory().numTensors;
      pool = await InferencePool.create(model, { workers: 2 });
    });
    after(async () => {
      await pool.dispose();
      model.dispose();
    });

    it('starts one replica per worker on the requested backend', () => {
      expect(pool.size).to.equal(2);
      expect(pool.backend).to.equal('wasm');
      expect(pool.weightBytes).to.equal(model.numParams() * 4);
      expect(pool.outputWidth('logits')).to.equal(10);
      expect(pool.outputWidth('embed')).to.equal(32);
    });

    for (const kind of ['logits', 'embed', 'probs'] as const) {
      it(`${kind} equal the single-threaded model's`, async () => {
        const got = await pool.run(kind, x.slice(), shape);
        expectClose(got, reference(model, kind, x, shape), 1e-5, 1e-5);
      });
    }

    it('transfers a whole input buffer and leaves partial views and runMany inputs intact', async () => {
      const whole = x.slice();
      await pool.run('logits', whole, shape);
      expect(whole.length, 'transferred (detached)').to.equal(0);
      const kept = x.slice();
      expectClose(await pool.run('logits', kept, shape, { transfer: false }), reference(model, 'logits', x, shape), 1e-5, 1e-5);
      expect(kept.length, 'copied').to.equal(x.length);
      const big = new Float32Array(x.length + 8);
      big.set(x, 8);
      const part = big.subarray(8);
      expectClose(await pool.run('logits', part, shape), reference(model, 'logits', x, shape), 1e-5, 1e-5);
      expect(part.length).to.equal(x.length);
      const copy = x.slice();
      await pool.runMany('embed', copy, shape);
      expect(copy.length).to.equal(x.length);
    });

    it('queues more batches than workers, FIFO, each resolving with its own rows', async () => {
      const inputs = Array.from({ length: 7 }, (_, i) => randn(2 * 32 * 32 * 3, `pool/q${i}`));
      const outs = await Promise.all(inputs.map((inp) => pool.run('logits', inp.slice(), [2, 32, 32, 3])));
      outs.forEach((y, i) => expectClose(y, reference(model, 'logits', inputs[i], [2, 32, 32, 3]), 1e-5, 1e-5));
    });

    it('runMany splits a batch across workers and returns rows in input order', async () => {
      const n = 5;
      const big = randn(n * 32 * 32 * 3, 'pool/many');
      const want = reference(model, 'logits', big, [n, 32, 32, 3]);
      expectClose(await pool.runMany('logits', big, [n, 32, 32, 3]), want, 1e-5, 1e-5);
      expectClose(await pool.runMany('logits', big, [n, 32, 32, 3], { chunkSize: 1 }), want, 1e-5, 1e-5);
      // A SharedArrayBuffer input is split into views, not copied.
      const shared = new Float32Array(new SharedArrayBuffer(big.byteLength));
      shared.set(big);
      expectClose(await pool.runMany('logits', shared, [n, 32, 32, 3], { chunkSize: 2 }), want, 1e-5, 1e-5);
    });

    it('propagates an error thrown inside a worker as a PoolError with its message, and keeps working', async () => {
      const small = randn(16 * 16 * 3, 'pool/small');
      const err = await pool.run('logits', small, [1, 16, 16, 3]).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(PoolError);
      expect((err as PoolError).message).to.match(/^worker \d: ShapeError: input spatial size must be at least 32x32 \(the total stride\), got 16x16$/);
      expect((err as PoolError).workerErrorName).to.equal('ShapeError');
      expectClose(await pool.run('embed', x.slice(), shape), reference(model, 'embed', x, shape), 1e-5, 1e-5);
    });

    it('rejects bad requests on the main thread with typed errors', async () => {
      const reject = (p: Promise<unknown>) =>
        p.then(
          () => expect.fail('resolved'),
          (e: unknown) => e as Error,
        );
      expect(await reject(pool.run('logits', x.slice(), [3, 64, 48, 4]))).to.be.instanceOf(ShapeError);
      expect((await reject(pool.run('logits', x.slice(), [2, 64, 48, 3]))).message).to.match(/batch has 27648 values, shape \[2,64,48,3\] needs 18432/);
      expect(await reject(pool.run('logits', x.slice(), [3, 64, 48]))).to.be.instanceOf(ShapeError);
      expect(await reject(pool.run('scores' as RunKind, x.slice(), shape))).to.be.instanceOf(ConfigError);
      expect(await reject(pool.run('logits', Array.from(x) as unknown as Float32Array, shape))).to.be.instanceOf(ShapeError);
    });

    it('leaks no tensors, on the main thread or in the workers', async () => {
      const mem0 = await pool.memory();
      expect(mem0).to.have.length(2);
      for (let i = 0; i < 3; i++) await pool.runMany('probs', x.slice(), shape);
      expect(await pool.memory()).to.deep.equal(mem0);
      // Every worker holds exactly the model's parameters.
      for (const m of mem0) expect(m.numTensors).to.equal(model.parameterNames().length);
      expect(tf.memory().numTensors).to.equal(tensorsBefore);
    });
  });

  it('one worker answers queued jobs in submission order', async () => {
    const model = randomModel(TINY, 'pool/fifo');
    const pool = await InferencePool.create(model, { workers: 1 });
    try {
      const order: number[] = [];
      // Decreasing sizes: a pool that did not keep FIFO order would finish the small ones first.
      await Promise.all([6, 4, 2, 1].map((n, i) => pool.run('embed', randn(n * 64 * 64 * 3, `pool/fifo${i}`), [n, 64, 64, 3]).then(() => order.push(i))));
      expect(order).to.deep.equal([0, 1, 2, 3]);
    } finally {
      await pool.dispose();
      model.dispose();
    }
  });

  it('convnext_atto logits and embed equal the single-threaded model within 1e-5', async () => {
    const model = randomModel('convnext_atto', 'pool/atto');
    const pool = await InferencePool.create(model, { workers: 2 });
    try {
      const shape = [2, 96, 96, 3];
      const x = randn(2 * 96 * 96 * 3, 'pool/atto-x');
      for (const kind of ['logits', 'embed'] as const) {
        expectClose(await pool.runMany(kind, x, shape), reference(model, kind, x, shape), 1e-5, 1e-5);
      }
    } finally {
      await pool.dispose();
      model.dispose();
    }
  });

  it('builds replicas from plain or shared arrays and checks them like a strict load', async () => {
    const model = randomModel({ ...TINY, version: 2 }, 'pool/plain');
    const weights = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, v] of model.getWeights()) weights.set(name, { shape: v.shape, data: v.dataSync() as Float32Array });
    // Half of the parameters already on shared memory: used in place.
    let i = 0;
    for (const w of weights.values()) {
      if (i++ % 2) continue;
      const s = new Float32Array(new SharedArrayBuffer(w.data.byteLength));
      s.set(w.data);
      w.data = s;
    }
    const shared = shareWeights({ config: model.config, weights });
    expect(shared.params.filter((p) => p.buffer === (weights.get(p.name)!.data.buffer as unknown))).to.have.length(Math.ceil(weights.size / 2));
    const x = randn(2 * 32 * 32 * 3, 'pool/plain-x');
    const pool = await InferencePool.create({ config: model.config, weights }, { workers: 1 });
    try {
      expectClose(await pool.run('logits', x.slice(), [2, 32, 32, 3]), reference(model, 'logits', x, [2, 32, 32, 3]), 1e-5, 1e-5);
    } finally {
      await pool.dispose();
    }
    const bad = new Map(weights);
    bad.delete('head.fc.bias');
    bad.set('stem.conv.bias', { shape: [7], data: new Float32Array(7) });
    expect(() => shareWeights({ config: model.config, weights: bad })).to.throw(
      WeightsError,
      /missing 1: head\.fc\.bias \[10\] \| shape mismatch 1: stem\.conv\.bias: \[/,
    );
    model.dispose();
  });

  it('runs replicas on the cpu backend (weights used in place from shared memory)', async () => {
    const model = randomModel(TINY, 'pool/cpu');
    const pool = await InferencePool.create(model, { workers: 2, backend: 'cpu' });
    try {
      expect(pool.backend).to.equal('cpu');
      const x = randn(4 * 32 * 32 * 3, 'pool/cpu-x');
      // wasm reference vs cpu replicas: different kernels, float32 rounding.
      expectClose(await pool.runMany('logits', x, [4, 32, 32, 3]), reference(model, 'logits', x, [4, 32, 32, 3]), 1e-4, 1e-4);
    } finally {
      await pool.dispose();
      model.dispose();
    }
  });

  it('reports a crashed worker instead of hanging, and carries on with the others', async () => {
    const model = randomModel(TINY, 'pool/crash');
    const pool = await InferencePool.create(model, { workers: 2 });
    const workers = (pool as unknown as { slots: { worker: { terminate(): Promise<number> } }[] }).slots.map((s) => s.worker);
    try {
      const x = randn(8 * 64 * 64 * 3, 'pool/crash-x');
      const job = pool.run('logits', x.slice(), [8, 64, 64, 3]);
      void workers[0].terminate(); // dies under a running job, behind the pool's back
      const err = await job.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(PoolError);
      expect((err as Error).message).to.match(/^worker 0 exited unexpectedly/);
      expect(pool.size).to.equal(1);
      expectClose(await pool.run('logits', x.slice(), [8, 64, 64, 3]), reference(model, 'logits', x, [8, 64, 64, 3]), 1e-5, 1e-5);
      // The last one dies with jobs queued: all of them reject.
      const jobs = [0, 1, 2].map(() =>
        pool.run('logits', x.slice(), [8, 64, 64, 3]).then(
          () => 'ok',
          (e: Error) => e.message,
        ),
      );
      void workers[1].terminate();
      const results = await Promise.all(jobs);
      expect(results[0]).to.match(/^worker 1 exited unexpectedly/);
      expect(results.slice(1)).to.satisfy((r: string[]) => r.every((m) => /^no workers left: worker 1 exited/.test(m)));
      expect(pool.size).to.equal(0);
      const after = await pool.run('logits', x.slice(), [8, 64, 64, 3]).then(
        () => null,
        (e: Error) => e,
      );
      expect(after)
        .to.be.instanceOf(PoolError)
        .with.property('message')
        .that.matches(/no live workers/);
    } finally {
      await pool.dispose();
      model.dispose();
    }
  });

  it('rejects jobs pending at dispose, and every call after it', async () => {
    const model = randomModel(TINY, 'pool/dispose');
    const pool = await InferencePool.create(model, { workers: 1 });
    const x = randn(4 * 64 * 64 * 3, 'pool/dispose-x');
    const jobs = [0, 1, 2].map(() =>
      pool.run('logits', x.slice(), [4, 64, 64, 3]).then(
        () => 'ok',
        (e: Error) => e,
      ),
    );
    await pool.dispose();
    for (const r of await Promise.all(jobs))
      expect(r)
        .to.be.instanceOf(PoolError)
        .with.property('message')
        .that.matches(/disposed/);
    expect(
      await pool.run('logits', x.slice(), [4, 64, 64, 3]).then(
        () => null,
        (e: Error) => e,
      ),
    ).to.be.instanceOf(PoolError);
    expect(pool.size).to.equal(0);
    await pool.dispose(); // idempotent
    model.dispose();
  });

  it('fails create with a PoolError naming the worker when a replica cannot start', async () => {
    const model = randomModel(TINY, 'pool/bad-backend');
    try {
      const err = await InferencePool.create(model, { workers: 2, backend: 'quantum' }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(PoolError);
      expect((err as Error).message).to.match(/^worker \d failed to start: unknown backend 'quantum'/);
      expect(
        await InferencePool.create(model, { workers: 0 }).then(
          () => null,
          (e: unknown) => e,
        ),
      ).to.be.instanceOf(ConfigError);
    } finally {
      model.dispose();
    }
  });

  describe('process lifetime (child node processes)', () => {
    const prelude = `
      const { initBackend } = require('./dist/src/backend');
      const { createModel } = require('./dist/src/factory');
      const { InferencePool } = require('./dist/src/parallel');
      const TINY = ${JSON.stringify(TINY)};
      (async () => {
        await initBackend({ backend: 'wasm' });
        const m = createModel(TINY);
        const pool = await InferencePool.create(m, { workers: 2 });
        const y = await pool.runMany('logits', new Float32Array(4 * 32 * 32 * 3), [4, 32, 32, 3]);
        console.log('rows', y.length / 10);`;

    it('exits promptly once the pool is disposed', () => {
      const r = runChild(`${prelude}
        await pool.dispose();
        console.log('disposed');
      })().catch((e) => { console.error(e); process.exit(2); });`);
      expect(r.signal, r.out).to.equal(null);
      expect(r.code, r.out).to.equal(0);
      expect(r.out).to.match(/rows 4\s+disposed/);
      expect(r.ms, 'exit time').to.be.below(30_000);
    });

    it('does not keep the process alive with idle workers (no dispose)', () => {
      const r = runChild(`${prelude}
        console.log('idle');
      })().catch((e) => { console.error(e); process.exit(2); });`);
      expect(r.signal, r.out).to.equal(null);
      expect(r.code, r.out).to.equal(0);
      expect(r.out).to.match(/rows 4\s+idle/);
    });

    it('exits when create fails', () => {
      const r = runChild(`
        const { initBackend } = require('./dist/src/backend');
        const { createModel } = require('./dist/src/factory');
        const { InferencePool } = require('./dist/src/parallel');
        initBackend({ backend: 'wasm' })
          .then(() => InferencePool.create(createModel(${JSON.stringify(TINY)}), { workers: 2, backend: 'quantum' }))
          .then(() => process.exit(3), (e) => console.log(e.name));`);
      expect(r.signal, r.out).to.equal(null);
      expect(r.code, r.out).to.equal(0);
      expect(r.out).to.match(/PoolError/);
    });
  });
});
