/**
 * The TypeScript training kernels for the wasm backend (src/backend/wasm_gradients): gradients of
 * conv2d / depthwiseConv2d / fused ops computed on 'wasm' must equal the cpu backend's, and a tiny
 * ConvNeXt's cross-entropy gradients must match parameter by parameter, without leaking tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { expectClose, maxAbs, onBackend, randn, useBackend } from '../helpers';
import { WASM_TRAINING_KERNELS, registerWasmTrainingKernels } from '../../src/backend/wasm_gradients';
import { createModel } from '../../src/factory';
import { ConvNeXtConfig } from '../../src/model/configs';
import { assignWeights, randomWeights } from '../random_weights';

type Shape4 = [number, number, number, number];

interface Input {
  shape: number[];
  data: Float32Array;
}

function input(shape: number[], seed: string, scale = 1): Input {
  return {
    shape,
    data: randn(
      shape.reduce((a, b) => a * b, 1),
      seed,
      scale,
    ),
  };
}

/** Gradients of f w.r.t. every input, computed on `backend`; checks that nothing leaks. */
async function gradsOn(backend: string, f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: Input[]): Promise<Float32Array[]> {
  await useBackend(backend);
  const before = tf.memory().numTensors;
  const xs = inputs.map((i) => tf.tensor(i.data, i.shape));
  const gs = tf.grads((...args: tf.Tensor[]) => f(...args))(xs);
  const out = gs.map((g) => g.dataSync() as Float32Array);
  tf.dispose([...xs, ...gs]);
  expect(tf.memory().numTensors, `tensors leaked on ${backend}`).to.equal(before);
  return out;
}

/** Compares wasm against cpu within 1e-4 relative (to each gradient's max magnitude). */
async function compareGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: Input[], names: string[]): Promise<void> {
  const cpu = await gradsOn('cpu', f, inputs);
  const wasm = await gradsOn('wasm', f, inputs);
  cpu.forEach((expected, i) => {
    expect(wasm[i].length, names[i]).to.equal(expected.length);
    expect(maxAbs(expected), `${names[i]}: degenerate gradient`).to.be.greaterThan(0);
    try {
      expectClose(wasm[i], expected, 1e-4 * maxAbs(expected), 1e-4);
    } catch (e) {
      throw new Error(`gradient w.r.t. ${names[i]}: ${(e as Error).message}`);
    }
  });
}

/** A fixed random projection so that dy is not all ones. */
function weightedSum(y: tf.Tensor, seed: string): tf.Scalar {
  const r = tf.tensor(randn(y.size, seed), y.shape);
  return tf.sum(tf.mul(y, r));
}

describe('wasm training kernels', () => {
  onBackend('wasm', registerWasmTrainingKernels);

  describe('registerWasmTrainingKernels', () => {
    it('registers the three conv gradient kernels for wasm, idempotently', () => {
      const names = WASM_TRAINING_KERNELS.map((k) => k.kernelName);
      expect(names).to.have.members(['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput']);
      for (const n of names) expect(tf.getKernel(n, 'wasm'), n).to.not.equal(undefined);
      expect(registerWasmTrainingKernels()).to.deep.equal([]);
      expect(WASM_TRAINING_KERNELS.every((k) => k.backendName === 'wasm')).to.equal(true);
    });

    it('does not touch other backends', () => {
      // The cpu kernels are tfjs-backend-cpu's own.
      for (const k of WASM_TRAINING_KERNELS) expect(tf.getKernel(k.kernelName, 'cpu')?.kernelFunc).to.not.equal(k.kernelFunc);
    });
  });

  describe('wasm conv gradients equal the cpu backend', () => {
    interface ConvCase {
      op: 'conv2d' | 'depthwiseConv2d';
      name: string;
      x: Shape4;
      w: Shape4;
      strides: number | [number, number];
      pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
    }

    /** Explicit padding of H and W, [before, after] each (NHWC: none on N and C). */
    const explicitPad = (h: [number, number], w: [number, number]): tf.backend_util.ExplicitPadding => [[0, 0], h, w, [0, 0]];

    const convCases: ConvCase[] = [
      { op: 'conv2d', name: 'stem 4x4/s4 valid, batch 2, 17x18 input (floor), 3 -> 7 channels', x: [2, 17, 18, 3], w: [4, 4, 3, 7], strides: 4, pad: 'valid' },
      { op: 'conv2d', name: 'downsample 2x2/s2 valid, batch 3, 9x7 input, 6 -> 10 channels', x: [3, 9, 7, 6], w: [2, 2, 6, 10], strides: 2, pad: 'valid' },
      { op: 'conv2d', name: 'downsample 2x2/s2 valid, 40 -> 80 channels (atto stage 1 -> 2)', x: [2, 8, 8, 40], w: [2, 2, 40, 80], strides: 2, pad: 'valid' },
      { op: 'conv2d', name: '3x3/s1 same, 5 -> 9 channels', x: [2, 7, 6, 5], w: [3, 3, 5, 9], strides: 1, pad: 'same' },
      { op: 'conv2d', name: '3x3/s2 same, even input', x: [1, 10, 8, 3], w: [3, 3, 3, 5], strides: 2, pad: 'same' },
      { op: 'conv2d', name: '5x3 kernel, strides [2, 1], same', x: [2, 9, 8, 2], w: [5, 3, 2, 3], strides: [2, 1], pad: 'same' },
      { op: 'conv2d', name: '3x3/s2, numeric pad 1', x: [2, 9, 8, 2], w: [3, 3, 2, 3], strides: 2, pad: 1 },
      { op: 'conv2d', name: 'explicit asymmetric padding', x: [2, 6, 7, 3], w: [3, 2, 3, 4], strides: [1, 2], pad: explicitPad([1, 2], [0, 1]) },
      { op: 'depthwiseConv2d', name: '7x7/s1 same, odd 9x11, batch 3, 5 channels', x: [3, 9, 11, 5], w: [7, 7, 5, 1], strides: 1, pad: 'same' },
      { op: 'depthwiseConv2d', name: '7x7/s1 same, 5x5 map smaller than 2*pad, 13 channels', x: [2, 5, 5, 13], w: [7, 7, 13, 1], strides: 1, pad: 'same' },
      { op: 'depthwiseConv2d', name: '7x7/s1 same, 1x1 map (last ConvNeXt stage at 32 px)', x: [2, 1, 1, 6], w: [7, 7, 6, 1], strides: 1, pad: 'same' },
      { op: 'depthwiseConv2d', name: '7x7/s1 same, atto stage 1 (16x16x40)', x: [2, 16, 16, 40], w: [7, 7, 40, 1], strides: 1, pad: 'same' },
      { op: 'depthwiseConv2d', name: '3x3/s2 same, channel multiplier 2', x: [2, 9, 10, 3], w: [3, 3, 3, 2], strides: 2, pad: 'same' },
      { op: 'depthwiseConv2d', name: '5x5/s1 valid, multiplier 3', x: [2, 8, 7, 2], w: [5, 5, 2, 3], strides: 1, pad: 'valid' },
      { op: 'depthwiseConv2d', name: '3x3 strides [1, 2], numeric pad 2', x: [1, 7, 8, 4], w: [3, 3, 4, 1], strides: [1, 2], pad: 2 },
      { op: 'depthwiseConv2d', name: '3x3 explicit asymmetric padding', x: [2, 6, 5, 3], w: [3, 3, 3, 1], strides: 1, pad: explicitPad([2, 0], [1, 3]) },
    ];

    for (const c of convCases) {
      it(`${c.op} ${c.name}: dx, dW`, async () => {
        const conv = c.op === 'conv2d' ? tf.conv2d : tf.depthwiseConv2d;
        await compareGrads(
          (x, w) => weightedSum(conv(x as tf.Tensor4D, w as tf.Tensor4D, c.strides, c.pad), `dy/${c.name}`),
          [input(c.x, `x/${c.name}`), input(c.w, `w/${c.name}`, 0.3)],
          ['x', 'filter'],
        );
      });
    }

    const fusedCases = [
      { name: 'fused.conv2d with bias (stem 4x4/s4 valid)', op: tf.fused.conv2d, tag: 'fused', x: [2, 16, 20, 3], w: [4, 4, 3, 10], strides: 4, pad: 'valid' },
      {
        name: 'fused.depthwiseConv2d 7x7/s1 same with bias (ConvNeXt block)',
        op: tf.fused.depthwiseConv2d,
        tag: 'fused-dw',
        x: [3, 7, 9, 10],
        w: [7, 7, 10, 1],
        strides: 1,
        pad: 'same',
      },
    ] as const;
    for (const c of fusedCases) {
      it(`${c.name}: dx, dW, dbias`, async () => {
        await compareGrads(
          (x, w, b) => weightedSum(c.op({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: c.strides, pad: c.pad, bias: b }), `dy/${c.tag}`),
          [input([...c.x], `x/${c.tag}`), input([...c.w], `w/${c.tag}`, 0.3), input([10], `b/${c.tag}`)],
          ['x', 'filter', 'bias'],
        );
      });
    }

    it('fused.matMul with bias (ConvNeXt MLP) is differentiable on wasm as on cpu', async () => {
      await compareGrads(
        (a, b, bias) => weightedSum(tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias }), 'dy/mm'),
        [input([12, 10], 'a/mm'), input([10, 7], 'b/mm', 0.3), input([7], 'bias/mm')],
        ['a', 'b', 'bias'],
      );
    });
  });

  /**
   * Attribute combinations that tfjs-core's op gradients cannot reach on wasm (dilated depthwise
   * gradients are refused by tfjs-core) or where tfjs-backend-wasm 4.22's own FORWARD conv is wrong
   * or corrupts its heap (dimRoundingMode 'round' / 'ceil'; a non-square filter with a numeric pad):
   * the kernels are run directly on the same inputs and attributes on both backends.
   */
  describe('wasm training kernels run directly equal the cpu backend', () => {
    async function runOn(backend: string, kernel: string, inputs: Record<string, Input>, attrs: object): Promise<Float32Array> {
      await useBackend(backend);
      const before = tf.memory().numTensors;
      const ts: Record<string, tf.Tensor> = {};
      for (const [k, v] of Object.entries(inputs)) ts[k] = tf.tensor(v.data, v.shape);
      const out = tf.engine().runKernel(kernel, ts, attrs as tf.NamedAttrMap) as tf.Tensor;
      const vals = out.dataSync() as Float32Array;
      tf.dispose([out, ...Object.values(ts)]);
      expect(tf.memory().numTensors, `tensors leaked on ${backend}`).to.equal(before);
      return vals;
    }

    async function compareKernel(kernel: string, inputs: Record<string, Input>, attrs: object): Promise<void> {
      const want = await runOn('cpu', kernel, inputs, attrs);
      const got = await runOn('wasm', kernel, inputs, attrs);
      expect(maxAbs(want), 'degenerate result').to.be.greaterThan(0);
      expectClose(got, want, 1e-4 * maxAbs(want), 1e-4);
    }

    interface DirectCase {
      name: string;
      x: Shape4;
      filter: Shape4;
      strides: number | [number, number];
      pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
      dilations?: number | [number, number];
      dimRoundingMode?: 'floor' | 'round' | 'ceil';
    }

    function dyShape(c: DirectCase, depthwise: boolean): number[] {
      const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, c.dilations ?? 1, c.pad, c.dimRoundingMode, depthwise);
      return info.outShape;
    }

    const convCases: DirectCase[] = [
      { name: '5x3 kernel, strides [2, 1], numeric pad 1', x: [2, 9, 8, 2], filter: [5, 3, 2, 3], strides: [2, 1], pad: 1 },
      { name: '3x3/s2, numeric pad 1, dimRoundingMode round', x: [1, 10, 9, 2], filter: [3, 3, 2, 3], strides: 2, pad: 1, dimRoundingMode: 'round' },
      { name: '3x3/s2, numeric pad 0, dimRoundingMode ceil', x: [2, 10, 9, 5], filter: [3, 3, 5, 6], strides: 2, pad: 0, dimRoundingMode: 'ceil' },
    ];
    for (const c of convCases) {
      it(`Conv2DBackpropFilter ${c.name}`, async () => {
        await compareKernel(
          'Conv2DBackpropFilter',
          { x: input(c.x, `x/${c.name}`), dy: input(dyShape(c, false), `dy/${c.name}`) },
          { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: c.dimRoundingMode, filterShape: c.filter },
        );
      });
    }

    const dwCases: DirectCase[] = [
      {
        name: '3x3 strides [1, 2], numeric pad 2, dimRoundingMode ceil',
        x: [1, 7, 8, 4],
        filter: [3, 3, 4, 1],
        strides: [1, 2],
        pad: 2,
        dimRoundingMode: 'ceil',
      },
      {
        name: '3x3/s2, numeric pad 1, dimRoundingMode round, multiplier 2',
        x: [2, 10, 9, 3],
        filter: [3, 3, 3, 2],
        strides: 2,
        pad: 1,
        dimRoundingMode: 'round',
      },
    ];
    for (const c of dwCases) {
      const attrs = { strides: c.strides, pad: c.pad, dilations: c.dilations ?? 1, dimRoundingMode: c.dimRoundingMode };
      it(`DepthwiseConv2dNativeBackpropFilter ${c.name}`, async () => {
        await compareKernel(
          'DepthwiseConv2dNativeBackpropFilter',
          { x: input(c.x, `x/${c.name}`), dy: input(dyShape(c, true), `dy/${c.name}`) },
          { ...attrs, filterShape: c.filter },
        );
      });
      it(`DepthwiseConv2dNativeBackpropInput ${c.name}`, async () => {
        await compareKernel(
          'DepthwiseConv2dNativeBackpropInput',
          { dy: input(dyShape(c, true), `dy/${c.name}`), filter: input(c.filter, `w/${c.name}`) },
          { ...attrs, inputShape: c.x },
        );
      });
    }

    /**
     * Dilated depthwise: tfjs-backend-cpu's backprop kernels ignore dilations (tfjs-core never calls
     * them with dilation > 1), so the reference is the definition in float64 loops, tied to the cpu
     * backend's (correct) dilated FORWARD by the adjoint identity <dy, conv(x, W)> = <dW, W> = <dx, x>.
     */
    function refDepthwiseGrads(x: Input, w: Input, dy: Input, info: tf.backend_util.Conv2DInfo): { dW: Float64Array; dx: Float64Array } {
      const [n0, h, wd, c] = info.inShape;
      const { outHeight: oh, outWidth: ow, filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = info;
      const { dilationHeight: dh, dilationWidth: dwl } = info;
      const mult = info.outChannels / info.inChannels;
      const dW = new Float64Array(fh * fw * c * mult);
      const dx = new Float64Array(n0 * h * wd * c);
      for (let n = 0; n < n0; n++)
        for (let i = 0; i < oh; i++)
          for (let j = 0; j < ow; j++)
            for (let kh = 0; kh < fh; kh++)
              for (let kw = 0; kw < fw; kw++) {
                const ih = i * sh + kh * dh - info.padInfo.top;
                const iw = j * sw + kw * dwl - info.padInfo.left;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                for (let ch = 0; ch < c; ch++)
                  for (let m = 0; m < mult; m++) {
                    const g = dy.data[((n * oh + i) * ow + j) * c * mult + ch * mult + m];
                    const wi = ((kh * fw + kw) * c + ch) * mult + m;
                    const xi = ((n * h + ih) * wd + iw) * c + ch;
                    dW[wi] += x.data[xi] * g;
                    dx[xi] += w.data[wi] * g;
                  }
              }
      return { dW, dx };
    }

    const dotp = (a: ArrayLike<number>, b: ArrayLike<number>) => {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += a[i] * b[i];
      return s;
    };

    const dilatedCases: DirectCase[] = [
      { name: '3x3 dilation 2, same, multiplier 2', x: [2, 11, 10, 3], filter: [3, 3, 3, 2], strides: 1, pad: 'same', dilations: 2 },
      { name: '3x3 dilations [2, 3], valid', x: [2, 11, 12, 5], filter: [3, 3, 5, 1], strides: 1, pad: 'valid', dilations: [2, 3] },
      { name: '7x7 dilation 2, same, 6 channels', x: [1, 9, 13, 6], filter: [7, 7, 6, 1], strides: 1, pad: 'same', dilations: 2 },
    ];
    for (const c of dilatedCases) {
      it(`depthwise backprop filter and input, ${c.name}`, async () => {
        const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, c.dilations ?? 1, c.pad, c.dimRoundingMode, true);
        const x = input(c.x, `x/${c.name}`);
        const w = input(c.filter, `w/${c.name}`);
        const dy = input(info.outShape, `dy/${c.name}`);
        const attrs = { strides: c.strides, pad: c.pad, dilations: c.dilations ?? 1, dimRoundingMode: c.dimRoundingMode };
        const dW = await runOn('wasm', 'DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...attrs, filterShape: c.filter });
        const dx = await runOn('wasm', 'DepthwiseConv2dNativeBackpropInput', { dy, filter: w }, { ...attrs, inputShape: c.x });
        const ref = refDepthwiseGrads(x, w, dy, info);
        expectClose(dW, ref.dW, 1e-4 * maxAbs(ref.dW), 1e-4);
        expectClose(dx, ref.dx, 1e-4 * maxAbs(ref.dx), 1e-4);
        await useBackend('cpu');
        const y = tf.tidy(() => tf.depthwiseConv2d(tf.tensor4d(x.data, c.x), tf.tensor4d(w.data, c.filter), c.strides, c.pad, 'NHWC', c.dilations).dataSync());
        const forward = dotp(dy.data, y);
        expect(dotp(ref.dW, w.data)).to.be.closeTo(forward, 1e-4 * Math.abs(forward) + 1e-3);
        expect(dotp(ref.dx, x.data)).to.be.closeTo(forward, 1e-4 * Math.abs(forward) + 1e-3);
      });
    }

    it('Conv2DBackpropFilter refuses NCHW with a clear error', async () => {
      await useBackend('wasm');
      const xs = tf.zeros([1, 3, 8, 8]);
      const dy = tf.zeros([1, 4, 4, 4]);
      try {
        expect(() =>
          tf.engine().runKernel('Conv2DBackpropFilter', { x: xs, dy }, {
            strides: 2,
            pad: 'valid',
            dataFormat: 'NCHW',
            filterShape: [2, 2, 3, 4],
          } as unknown as tf.NamedAttrMap),
        ).to.throw(/NCHW/);
      } finally {
        tf.dispose([xs, dy]);
      }
    });
  });

  describe('tiny ConvNeXt training gradients on wasm equal the cpu backend', () => {
    const cases: { name: string; config: Partial<ConvNeXtConfig> & Pick<ConvNeXtConfig, 'version' | 'depths' | 'dims'>; input: Shape4 }[] = [
      {
        name: 'V1 (layer scale, drop path in training mode), channels not multiples of 4',
        config: { version: 1, depths: [1, 1, 2, 1], dims: [6, 10, 14, 18], numClasses: 3, dropPathRate: 0.4 },
        input: [3, 40, 36, 3],
      },
      {
        name: 'V2 (GRN)',
        config: { version: 2, depths: [1, 1, 1, 1], dims: [8, 8, 8, 8], numClasses: 3 },
        input: [2, 32, 32, 3],
      },
    ];

    for (const c of cases) {
      it(`${c.name}: every parameter's gradient within 1e-4 of its max magnitude, no leaks`, async () => {
        const x = randn(
          c.input.reduce((a, b) => a * b, 1),
          `e2e/x/${c.name}`,
        );
        const labels = Array.from({ length: c.input[0] }, (_, i) => i % 3);
        let weights: ReturnType<typeof randomWeights> | null = null;

        const run = async (backend: string) => {
          await useBackend(backend);
          const before = tf.memory().numTensors;
          const model = createModel(c.config, { seed: 7 });
          weights ??= randomWeights(model, `e2e/${c.name}`);
          assignWeights(model, weights);
          const xt = tf.tensor4d(x, c.input);
          const target = tf.tidy(() => {
            const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), 3);
            // Label smoothing 0.1 over 3 classes.
            return tf.add(tf.mul(oneHot, 0.9), 0.1 / 3);
          });
          const inner = tf.memory().numTensors;
          const { value, grads } = tf.variableGrads(() =>
            tf.tidy(() => {
              const logits = model.forward(xt, { training: true, seed: 11 });
              return tf.mean(tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)), -1))) as tf.Scalar;
            }),
          );
          const loss = value.dataSync()[0];
          // Gradients by parameter name (variableGrads keys them by the variables' unique names).
          const out = new Map<string, Float32Array>();
          for (const [name, v] of model.getWeights()) {
            const g = grads[v.name];
            if (g) out.set(name, g.dataSync() as Float32Array);
          }
          const names = model.parameterNames();
          expect(Object.keys(grads).length, 'one gradient per parameter').to.equal(names.length);
          tf.dispose([value, ...Object.values(grads)]);
          expect(tf.memory().numTensors, `tensors leaked by the training step on ${backend}`).to.equal(inner);
          tf.dispose([xt, target]);
          model.dispose();
          expect(tf.memory().numTensors, `tensors leaked on ${backend}`).to.equal(before);
          return { loss, grads: out, names };
        };

        const cpu = await run('cpu');
        const wasm = await run('wasm');
        expect(wasm.loss).to.be.closeTo(cpu.loss, 1e-4 * Math.max(1, Math.abs(cpu.loss)));
        expect([...wasm.grads.keys()].sort()).to.deep.equal([...cpu.grads.keys()].sort());
        expect(cpu.grads.size).to.equal(cpu.names.length);
        for (const [name, want] of cpu.grads) {
          const scale = maxAbs(want);
          expect(scale, `${name}: degenerate gradient`).to.be.greaterThan(0);
          try {
            expectClose(wasm.grads.get(name)!, want, 1e-4 * scale, 0);
          } catch (e) {
            throw new Error(`${name}: ${(e as Error).message}`);
          }
        }
      });
    }
  });
});
