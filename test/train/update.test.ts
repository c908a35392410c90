/**
 * The workers' optimizer step (src/train/data_parallel/update.ts): slices cover the weights once on
 * cache-line bounds, and AdamW + EMA applied slice by slice over shared memory give the same bits as
 * AdamW.apply (the wasm ADAMW kernel) and ModelEma.update in one thread, with a frozen parameter, a
 * parameter one replica has no gradient for, a step without samples, and 1 to 3 workers, both with
 * our kernels on a shared WebAssembly.Memory and in JS on plain SharedArrayBuffers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import seedrandom from 'seedrandom';
import { registerWasmTrainingKernels } from '../../src/backend/wasm_gradients';
import { viewOf } from '../../src/parallel/shared_weights';
import { AdamW, adamwArrays } from '../../src/train/adamw';
import { updateKernels } from '../../src/backend/wasm_simd/shared_update';
import { UpdateOrder, createUpdateLayout, sliceOf, updateSlice } from '../../src/train/data_parallel/update';
import { ModelEma, emaArrays } from '../../src/train/ema';
import { onBackend } from '../helpers';

const LRS = [1e-2, 5e-3];
const SHAPES: Record<string, number[]> = { 'stem.0.weight': [4, 4, 3, 8], 'stem.0.bias': [8], 'stages.0.blocks.0.gamma': [8], 'head.fc.weight': [8, 5] };

function randn(n: number, rng: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => scale * (rng() * 2 - 1));
}

function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

describe('data-parallel update: slices', () => {
  it('cover [0, total) once, contiguous, starting on 16-element bounds', () => {
    for (const total of [0, 5, 16, 100, 1000, 4099])
      for (const w of [1, 2, 3, 4, 7]) {
        let at = 0;
        for (let k = 0; k < w; k++) {
          const [a, b] = sliceOf(total, k, w);
          expect(a, `total ${total} w ${w} k ${k}`).to.equal(at);
          expect(b).to.be.at.least(a);
          if (a < total) expect(a % 16).to.equal(0);
          at = b;
        }
        expect(at).to.equal(total);
      }
  });
});

describe('data-parallel update [wasm]', () => {
  onBackend('wasm', registerWasmTrainingKernels);

  it('adamwArrays and emaArrays give the bits of the ADAMW kernel and ModelEma', () => {
    const rng = seedrandom('adamw-arrays');
    const [p, m, v, g] = [randn(1003, rng), randn(1003, rng, 0.01), randn(1003, rng, 0.001).map(Math.abs), randn(1003, rng)];
    const pv = tf.variable(tf.tensor(p, [1003]));
    const params = new Map([['w.weight', pv]]);
    const opt = new AdamW(params, new Map([['w.weight', { lrScale: 0.7, decay: true }]]), { weightDecay: 0.05 });
    opt.loadState(4, new Map([['w.weight', tf.tensor(m)]]), new Map([['w.weight', tf.tensor(v)]]));
    const ema = new ModelEma(params, 0.99);
    const shadow = pv.dataSync().slice() as Float32Array;
    const gt = tf.tensor(g, [1003]);
    opt.apply(new Map([['w.weight', gt]]), 3e-3);
    ema.update(params);
    const [p2, m2, v2] = [p.slice(), m.slice(), v.slice()];
    adamwArrays(p2, m2, v2, g, opt.coefficients('w.weight', 3e-3, 5));
    emaArrays(shadow, p2, 0.99);
    expect(bits(p2)).to.deep.equal(bits(pv.dataSync() as Float32Array));
    expect(bits(m2)).to.deep.equal(bits(opt.state().m.get('w.weight')!.dataSync() as Float32Array));
    expect(bits(v2)).to.deep.equal(bits(opt.state().v.get('w.weight')!.dataSync() as Float32Array));
    expect(bits(shadow)).to.deep.equal(bits(ema.shadow.get('w.weight')!.dataSync() as Float32Array));
    tf.dispose([gt, pv]);
    opt.dispose();
    ema.dispose();
  });

  for (const workers of [1, 2, 3])
    it(`${workers} slice(s) over shared memory = AdamW.apply + ModelEma.update (frozen, missing, empty steps)`, () => {
      const rng = seedrandom(`update-${workers}`);
      const names = Object.keys(SHAPES);
      const init = new Map(
        names.map((k) => [
          k,
          randn(
            SHAPES[k].reduce((a, b) => a * b, 1),
            rng,
          ),
        ]),
      );
      const trainable = names.filter((k) => k !== 'stem.0.bias'); // stem.0.bias is frozen
      const gamma = trainable.indexOf('stages.0.blocks.0.gamma');
      // Two replicas' gradients; replica 1 has none for the gamma.
      const grads = [0, 1].map(() => new Map(trainable.map((k) => [k, randn(init.get(k)!.length, rng)])));
      const counts = [3, 5];

      // One thread: the mean gradient, AdamW.apply, ModelEma.update; then a step without samples (EMA only).
      const vars = new Map(names.map((k) => [k, tf.variable(tf.tensor(init.get(k)!, SHAPES[k]))]));
      const params = new Map(trainable.map((k) => [k, vars.get(k)!]));
      const groups = new Map([['head.fc.weight', { lrScale: 0.5, decay: true }]]);
      const opt = new AdamW(params, groups, { weightDecay: 0.05 });
      const ema = new ModelEma(vars, 0.9);
      const mean = new Map(
        trainable.map((k) => {
          const g0 = grads[0].get(k)!;
          const g1 = grads[1].get(k)!;
          const both = k !== 'stages.0.blocks.0.gamma';
          // axpy_f32's float32 operations: c0 x, then + c1 y (c = count / 8, exact in float32)
          const f = Math.fround;
          return [
            k,
            tf.tensor(
              g0.map((x, i) => (both ? f(f(x * (counts[0] / 8)) + f(g1[i] * (counts[1] / 8))) : f(x * (counts[0] / 8)))),
              SHAPES[k],
            ),
          ];
        }),
      );
      for (const lr of LRS) {
        opt.apply(mean, lr);
        ema.update(vars);
      }
      ema.update(vars); // a step without samples

      // Sharded: the same updates, slice by slice, with our kernels on a shared WebAssembly.Memory and in JS.
      for (const kernelMemory of [true, false]) {
        const specs = names.map((name) => ({ name, shape: SHAPES[name] }));
        // Two replicas gave gradients; `workers` slices apply them (a third slice has its own scratch).
        const layout = createUpdateLayout(
          specs,
          trainable.map((k) => names.indexOf(k)),
          Math.max(2, workers),
          true,
          kernelMemory,
        );
        expect(layout.memory !== null, 'kernel memory').to.equal(kernelMemory);
        const kernels = layout.memory ? updateKernels(layout.memory) : null;
        expect(kernels !== null).to.equal(kernelMemory);
        names.forEach((k, i) => {
          viewOf(layout.weights[i]).set(init.get(k)!);
          viewOf(layout.ema![i]).set(init.get(k)!);
        });
        trainable.forEach((k, j) => [0, 1].forEach((r) => viewOf(layout.grads[r][j]).set(grads[r].get(k)!)));
        const twin = new AdamW(params, groups, { weightDecay: 0.05 });
        const parts = [
          { scale: counts[0], missing: [] },
          { scale: counts[1], missing: [gamma] },
        ];
        const apply = (order: UpdateOrder) => {
          for (let k = 0; k < workers; k++) updateSlice(layout, order, k, workers, kernels);
        };
        for (const lr of LRS) {
          const t = twin.advance();
          apply({ coefficients: trainable.map((k) => twin.coefficients(k, lr, t)), n: 8, parts, emaDecay: 0.9 });
        }
        apply({ coefficients: null, n: 1, parts, emaDecay: 0.9 }); // no samples: the EMA alone moves
        const what = kernelMemory ? 'kernels' : 'JS';
        names.forEach((k, i) => {
          expect(bits(viewOf(layout.weights[i])), `${what} ${k}`).to.deep.equal(bits(vars.get(k)!.dataSync() as Float32Array));
          expect(bits(viewOf(layout.ema![i])), `${what} ema ${k}`).to.deep.equal(bits(ema.shadow.get(k)!.dataSync() as Float32Array));
        });
        expect(bits(viewOf(layout.weights[names.indexOf('stem.0.bias')]))).to.deep.equal(bits(init.get('stem.0.bias')!));
        trainable.forEach((k, j) => {
          expect(bits(viewOf(layout.m[j])), `${what} m ${k}`).to.deep.equal(bits(opt.state().m.get(k)!.dataSync() as Float32Array));
          expect(bits(viewOf(layout.v[j])), `${what} v ${k}`).to.deep.equal(bits(opt.state().v.get(k)!.dataSync() as Float32Array));
        });
        twin.dispose();
      }
      tf.dispose([...mean.values(), ...vars.values()]);
      opt.dispose();
      ema.dispose();
    });
});
