/**
 * Our SIMD backward kernels on the wasm backend (src/backend/wasm_simd: gemm_tn / gemm_nt, the Linear,
 * GELU and LayerNorm gradient kernels, the 7x7 depthwise and patchify-conv gradients, Identity),
 * each against the cpu backend and against what runs without it (the composite gradient, or the
 * kernel it stands in front of), plus the calls each one must pass on.
 *
 * Tolerances: the products sum the same terms as the cpu backend in another order (float32), so
 * they agree to a few ulps of the largest partial sum: 1e-5 x max(1, max|ref|) covers sums of up to
 * ~1000 terms of unit size with margin (observed 1e-7 - 1e-6). Where the SIMD kernel sums in the
 * order of the path it replaces (gemm_tn/nt against transpose + gemm), the bits are equal.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { registerSimdKernels, simdKernelsFor, unregisterSimdKernels } from '../../src/backend/wasm_simd';
import { simdConv2DBackpropFilter, simdConv2DBackpropInput } from '../../src/backend/wasm_simd/conv_patch_grad';
import { simdDepthwiseBackpropFilter, simdDepthwiseBackpropInput } from '../../src/backend/wasm_simd/depthwise_grad';
import { simdMatMul } from '../../src/backend/wasm_simd/matmul';
import { gelu, geluComposite } from '../../src/layers/gelu';
import { GELU_GRAD_KERNEL } from '../../src/kernel_names';
import { layerNorm, layerNormComposite } from '../../src/layers/layer_norm';
import { LAYER_NORM_GRAD_KERNEL } from '../../src/kernel_names';
import { linear } from '../../src/layers/linear';
import { LINEAR_GRAD_KERNEL } from '../../src/kernel_names';
import { AdamW } from '../../src/train/adamw';
import { ADAMW_KERNEL } from '../../src/kernel_names';
import { expectClose, maxAbs, onBackend, randn, useBackend } from '../helpers';
import { refGelu } from '../reference';

const scaleOf = (a: ArrayLike<number>): number => Math.max(1, maxAbs(a));

/** `f` with our kernels, without them (CONVNEXT_SIMD=0: the package's and our TypeScript kernels) and on cpu. */
async function threeWays(f: () => Float32Array[]): Promise<{ ours: Float32Array[]; without: Float32Array[]; cpu: Float32Array[] }> {
  const ours = f();
  unregisterSimdKernels();
  const without = f();
  registerSimdKernels();
  await useBackend('cpu');
  const cpu = f();
  await useBackend('wasm');
  return { ours, without, cpu };
}

async function kernelsOf(f: () => unknown): Promise<string[]> {
  const info = await tf.profile(() => {
    tf.tidy(() => {
      f();
    });
  });
  return [...new Set(info.kernels.map((k) => k.name))];
}

/** Gradients of sum(f(inputs) * r) for a fixed random r, w.r.t. every input. */
function gradsOf(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: { shape: number[]; seed: string; scale?: number; shift?: number }[]): Float32Array[] {
  return tf.tidy(() => {
    const xs = inputs.map((i) => tf.tensor(randn(tf.util.sizeFromShape(i.shape), i.seed, i.scale ?? 1, i.shift ?? 0), i.shape));
    const y0 = f(...xs);
    const r = tf.tensor(randn(y0.size, 'projection'), y0.shape);
    const gs = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), r)))(xs);
    return gs.map((g) => g.dataSync() as Float32Array);
  });
}

type GradKernel = (args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs: tf.NamedAttrMap }) => tf.TensorInfo | null;

/** Calls an input-gradient and a filter-gradient kernel directly on zeros: whether each took the call (null = passed on). */
function gradKernelsTake(input: GradKernel, filter: GradKernel, xShape: number[], wShape: number[], dyShape: number[], attrs: object): [boolean, boolean] {
  return tf.tidy(() => {
    const x = tf.zeros(xShape);
    const w = tf.zeros(wShape);
    const dy = tf.zeros(dyShape);
    const dx = input({ inputs: { dy, filter: w }, backend: tf.backend(), attrs: { ...attrs, inputShape: xShape } as unknown as tf.NamedAttrMap });
    const dw = filter({ inputs: { x, dy }, backend: tf.backend(), attrs: { ...attrs, filterShape: wShape } as unknown as tf.NamedAttrMap });
    for (const o of [dx, dw]) if (o) tf.engine().makeTensorFromTensorInfo(o).dispose();
    return [dx !== null, dw !== null];
  });
}

describe('SIMD backward kernels on the wasm backend', () => {
  onBackend('wasm', registerSimdKernels);
  after(() => registerSimdKernels());

  it('are registered with the forward kernels and removed with them (CONVNEXT_SIMD=0)', () => {
    const names = registerSimdKernels();
    for (const n of [
      GELU_GRAD_KERNEL,
      LAYER_NORM_GRAD_KERNEL,
      LINEAR_GRAD_KERNEL,
      ADAMW_KERNEL,
      'DepthwiseConv2dNativeBackpropInput',
      'DepthwiseConv2dNativeBackpropFilter',
      'Conv2DBackpropFilter',
      'Conv2DBackpropInput',
      'Identity',
    ]) {
      expect(names, n).to.include(n);
    }
    unregisterSimdKernels();
    for (const n of [GELU_GRAD_KERNEL, LAYER_NORM_GRAD_KERNEL, LINEAR_GRAD_KERNEL, ADAMW_KERNEL]) expect(tf.getKernel(n, 'wasm'), n).to.equal(undefined);
    // the depthwise gradients are still there: our TypeScript kernels (src/backend/wasm_kernels)
    expect(tf.getKernel('DepthwiseConv2dNativeBackpropFilter', 'wasm')).to.not.equal(undefined);
    registerSimdKernels();
    const k = simdKernelsFor(tf.backend());
    for (const f of [
      'adamw_f32',
      'gemm_tn_f32',
      'gemm_nt_f32',
      'colsum_f32',
      'gelu_grad_f32',
      'layer_norm_grad_f32',
      'depthwise_filter_grad7_nhwc',
      'patches_f32',
      'unpatches_f32',
    ]) {
      expect(k, f).to.have.property(f).that.is.a('function');
    }
  });

  describe('transposed products (gemm_tn_f32, gemm_nt_f32)', () => {
    const CASES: { name: string; a: number[]; b: number[]; ta: boolean; tb: boolean }[] = [
      { name: 'x^T dy, ConvNeXt-atto stage 1 at 64 px (8192 x 160)^T (8192 x 40): 16 panels of K', a: [8192, 160], b: [8192, 40], ta: true, tb: false },
      { name: 'dy W^T (512 x 160) (640 x 160)^T', a: [512, 160], b: [640, 160], ta: false, tb: true },
      { name: 'A^T B with M = 13 (4-row and 1-row tiles), K = 1100', a: [1100, 13], b: [1100, 16], ta: true, tb: false },
      { name: 'A B^T with batched A [3, 5, 24] and B [8, 24]', a: [3, 5, 24], b: [8, 24], ta: false, tb: true },
    ];
    for (const c of CASES) {
      it(`${c.name}: same bits as transpose + product, and as cpu`, async () => {
        const product = (transposed: boolean) =>
          tf.tidy(() => {
            const a = tf.tensor(randn(tf.util.sizeFromShape(c.a), `${c.name}a`), c.a);
            const b = tf.tensor(randn(tf.util.sizeFromShape(c.b), `${c.name}b`, 0.3), c.b);
            if (transposed) return tf.matMul(a, b, c.ta, c.tb).dataSync() as Float32Array;
            const at = c.ta ? tf.transpose(a) : a;
            const bt = c.tb ? tf.transpose(b) : b;
            return tf.matMul(at, bt).dataSync() as Float32Array;
          });
        const ours = product(true);
        expectClose(ours, product(false), 0, 0);
        await useBackend('cpu');
        const cpu = product(true);
        await useBackend('wasm');
        expectClose(ours, cpu, 1e-5 * scaleOf(cpu), 0);
      });
    }

    it('passes on both-transposed, a batched A^T and N % 8 != 0', () => {
      const taken = (a: number[], b: number[], transposeA: boolean, transposeB: boolean) =>
        tf.tidy(() => {
          const out = simdMatMul({
            inputs: { a: tf.zeros(a), b: tf.zeros(b) },
            backend: tf.backend(),
            attrs: { transposeA, transposeB } as unknown as tf.NamedAttrMap,
          });
          if (out) tf.engine().makeTensorFromTensorInfo(out).dispose();
          return out !== null;
        });
      expect(taken([16, 8], [16, 8], true, false)).to.equal(true);
      expect(taken([8, 16], [8, 16], false, true)).to.equal(true);
      expect(taken([16, 8], [8, 16], true, true)).to.equal(false);
      expect(taken([2, 16, 8], [16, 8], true, false)).to.equal(false);
      expect(taken([16, 8], [16, 12], true, false)).to.equal(false);
    });
  });

  describe('Linear gradient (ConvNeXtLinearGrad)', () => {
    const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => linear(x, w as tf.Tensor2D, b as tf.Tensor1D);
    it('dx, dw, db equal the composite (transposes + matMul + sum) and cpu', async () => {
      const inputs = [
        { shape: [2, 5, 7, 16], seed: 'lin-x' },
        { shape: [16, 24], seed: 'lin-w', scale: 0.3 },
        { shape: [24], seed: 'lin-b' },
      ];
      expect(await kernelsOf(() => gradsOf(f, inputs)))
        .to.include(LINEAR_GRAD_KERNEL)
        .and.not.include('Transpose');
      const { ours, without, cpu } = await threeWays(() => gradsOf(f, inputs));
      for (let i = 0; i < 3; i++) {
        expectClose(ours[i], without[i], 1e-5 * scaleOf(without[i]), 0);
        expectClose(ours[i], cpu[i], 1e-5 * scaleOf(cpu[i]), 0);
        expect(maxAbs(ours[i]), `gradient ${i}`).to.be.above(0.1);
      }
    });

    it('falls back to the composite when Cin or Cout % 8 != 0 (a 10-class head)', async () => {
      const inputs = [
        { shape: [3, 16], seed: 'head-x' },
        { shape: [16, 10], seed: 'head-w' },
        { shape: [10], seed: 'head-b' },
      ];
      expect(await kernelsOf(() => gradsOf(f, inputs)))
        .to.include('Transpose')
        .and.not.include(LINEAR_GRAD_KERNEL);
      const { ours, cpu } = await threeWays(() => gradsOf(f, inputs));
      for (let i = 0; i < 3; i++) expectClose(ours[i], cpu[i], 1e-5 * scaleOf(cpu[i]), 0);
    });
  });

  describe('GELU gradient (ConvNeXtGeluGrad)', () => {
    it('is within 3e-7 x max|dy| of the float64 derivative, as close as the composite, over [-12, 12] and beyond', async () => {
      const n = 4096;
      const xs = new Float32Array(n);
      for (let i = 0; i < n - 8; i++) xs[i] = -12 + (24 * i) / (n - 9);
      xs.set([0, -0, 4, -4, 30, -30, 1e-3, -100], n - 8);
      const dys = randn(n, 'gelu-dy', 1, 0.5);
      const run = () =>
        tf.tidy(() => {
          const x = tf.tensor1d(xs);
          const dy = tf.tensor1d(dys);
          return [
            tf
              .grad((v: tf.Tensor) => tf.sum(tf.mul(gelu(v), dy)))(x)
              .dataSync() as Float32Array,
          ];
        });
      expect(await kernelsOf(run))
        .to.include(GELU_GRAD_KERNEL)
        .and.not.include('Erf');
      const [ours] = run();
      const [composite] = tf.tidy(() => {
        const x = tf.tensor1d(xs);
        const dy = tf.tensor1d(dys);
        return [
          tf
            .grad((v: tf.Tensor) => tf.sum(tf.mul(geluComposite(v), dy)))(x)
            .dataSync() as Float32Array,
        ];
      });
      const ref = Array.from(xs, (x, i) => {
        const cdf = x === 0 ? 0.5 : refGelu(x) / x;
        return dys[i] * (cdf + (x * Math.exp((-x * x) / 2)) / Math.sqrt(2 * Math.PI));
      });
      const tol = 3e-7 * maxAbs(dys);
      expectClose(ours, ref, tol, 0);
      expectClose(composite, ref, tol, 0);
    });

    it('falls back to the composite when the size is not a multiple of 4', async () => {
      const run = () =>
        tf.tidy(() => {
          const x = tf.tensor1d(randn(6, 'g6'));
          return [
            tf
              .grad((v: tf.Tensor) => tf.sum(gelu(v)))(x)
              .dataSync() as Float32Array,
          ];
        });
      expect(await kernelsOf(run))
        .to.include('Erf')
        .and.not.include(GELU_GRAD_KERNEL);
    });
  });

  describe('LayerNorm gradient (ConvNeXtLayerNormGrad)', () => {
    for (const shape of [
      [2, 8, 8, 40],
      [3, 768],
      [5, 4],
    ]) {
      it(`dx, dweight, dbias of [${shape}] equal the composite and cpu`, async () => {
        const c = shape[shape.length - 1];
        const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => layerNorm(x, w as tf.Tensor1D, b as tf.Tensor1D, 1e-6);
        const g = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => layerNormComposite(x, w as tf.Tensor1D, b as tf.Tensor1D, 1e-6);
        const inputs = [
          { shape, seed: `ln-x${shape}`, scale: 2, shift: 0.5 },
          { shape: [c], seed: `ln-w${shape}`, scale: 0.3, shift: 1 },
          { shape: [c], seed: `ln-b${shape}`, scale: 0.2 },
        ];
        expect(await kernelsOf(() => gradsOf(f, inputs)))
          .to.include(LAYER_NORM_GRAD_KERNEL)
          .and.not.include('Mean');
        const ours = gradsOf(f, inputs);
        const composite = gradsOf(g, inputs);
        await useBackend('cpu');
        const cpu = gradsOf(f, inputs);
        await useBackend('wasm');
        for (let i = 0; i < 3; i++) {
          expectClose(ours[i], composite[i], 1e-5 * scaleOf(composite[i]), 0);
          expectClose(ours[i], cpu[i], 1e-5 * scaleOf(cpu[i]), 0);
          expect(maxAbs(ours[i])).to.be.above(0.01);
        }
      });
    }
  });

  describe('7x7 depthwise gradients', () => {
    const CASES: { name: string; x: number[]; k: number; strides?: number; filterSimd: boolean; inputSimd: boolean }[] = [
      { name: 'ConvNeXt-atto stage 1 at 64 px, batch 2 (16x16x40)', x: [2, 16, 16, 40], k: 7, filterSimd: true, inputSimd: true },
      { name: 'image narrower than the kernel (2x2x8)', x: [1, 2, 2, 8], k: 7, filterSimd: true, inputSimd: true },
      { name: 'odd sizes 9x5x4, batch 3', x: [3, 9, 5, 4], k: 7, filterSimd: true, inputSimd: true },
      { name: '3x3 (input gradient only)', x: [1, 8, 9, 12], k: 3, filterSimd: false, inputSimd: true },
      { name: 'stride 2 (passed on)', x: [1, 12, 12, 8], k: 7, strides: 2, filterSimd: false, inputSimd: false },
      { name: 'C % 4 != 0 (passed on)', x: [1, 9, 9, 6], k: 7, filterSimd: false, inputSimd: false },
    ];
    for (const c of CASES) {
      it(`${c.name}: dx and dw equal the TypeScript kernels and cpu`, async () => {
        const ch = c.x[3];
        const f = (x: tf.Tensor, w: tf.Tensor) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.strides ?? 1, 'same');
        const inputs = [
          { shape: c.x, seed: `${c.name}x` },
          { shape: [c.k, c.k, ch, 1], seed: `${c.name}w`, scale: 0.3 },
        ];
        const { ours, without, cpu } = await threeWays(() => gradsOf(f, inputs));
        for (let i = 0; i < 2; i++) {
          expectClose(ours[i], without[i], 1e-5 * scaleOf(without[i]), 0);
          expectClose(ours[i], cpu[i], 1e-5 * scaleOf(cpu[i]), 0);
          expect(maxAbs(ours[i])).to.be.above(0.01);
        }
      });
    }

    it('take exactly the calls they are written for', () => {
      for (const c of CASES) {
        const ch = c.x[3];
        const attrs = { strides: c.strides ?? 1, pad: 'same', dilations: 1, dimRoundingMode: undefined };
        const s = c.strides ?? 1; // 'same': ceil(size / stride)
        const dy = [c.x[0], Math.ceil(c.x[1] / s), Math.ceil(c.x[2] / s), ch];
        const [dxTaken, dwTaken] = gradKernelsTake(simdDepthwiseBackpropInput, simdDepthwiseBackpropFilter, c.x, [c.k, c.k, ch, 1], dy, attrs);
        expect(dxTaken, `${c.name}: input gradient`).to.equal(c.inputSimd);
        expect(dwTaken, `${c.name}: filter gradient`).to.equal(c.filterSimd);
      }
    });
  });

  describe('patchify convolution gradients (stem, downsampling)', () => {
    const CASES: { name: string; x: number[]; k: number; stride: number; cout: number; simd: boolean }[] = [
      { name: 'stem 4x4/4, 3 -> 8, 16x16, batch 2', x: [2, 16, 16, 3], k: 4, stride: 4, cout: 8, simd: true },
      { name: 'downsample 2x2/2, 8 -> 16, 8x8', x: [2, 8, 8, 8], k: 2, stride: 2, cout: 16, simd: true },
      { name: 'floor semantics: 9x11 input, 2x2/2 (last row and column unused)', x: [1, 9, 11, 8], k: 2, stride: 2, cout: 16, simd: true },
      { name: '3x3/1 (passed on)', x: [1, 6, 6, 8], k: 3, stride: 1, cout: 8, simd: false },
      { name: 'Cout % 8 != 0 (passed on)', x: [1, 8, 8, 8], k: 2, stride: 2, cout: 12, simd: false },
    ];
    for (const c of CASES) {
      it(`${c.name}: dx and dw equal the kernels they replace and cpu`, async () => {
        const f = (x: tf.Tensor, w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, 'valid');
        const inputs = [
          { shape: c.x, seed: `${c.name}x` },
          { shape: [c.k, c.k, c.x[3], c.cout], seed: `${c.name}w`, scale: 0.3 },
        ];
        const { ours, without, cpu } = await threeWays(() => gradsOf(f, inputs));
        for (let i = 0; i < 2; i++) {
          expectClose(ours[i], without[i], 1e-5 * scaleOf(without[i]), 0);
          expectClose(ours[i], cpu[i], 1e-5 * scaleOf(cpu[i]), 0);
          expect(maxAbs(ours[i])).to.be.above(0.01);
        }
        if (c.name.startsWith('floor')) {
          // rows and columns no patch covers get a zero gradient
          const dx = ours[0];
          const [, h, w, ch] = c.x;
          for (let x = 0; x < w; x++) for (let k = 0; k < ch; k++) expect(dx[((h - 1) * w + x) * ch + k]).to.equal(0);
          for (let y = 0; y < h; y++) for (let k = 0; k < ch; k++) expect(dx[(y * w + w - 1) * ch + k]).to.equal(0);
        }
      });
    }

    it('take exactly the calls they are written for', () => {
      for (const c of CASES) {
        const attrs = { strides: c.stride, pad: 'valid', dataFormat: 'NHWC', dimRoundingMode: undefined };
        const fshape = [c.k, c.k, c.x[3], c.cout];
        const out = (n: number) => Math.floor((n - c.k) / c.stride) + 1; // 'valid'
        const dy = [c.x[0], out(c.x[1]), out(c.x[2]), c.cout];
        const taken = gradKernelsTake(simdConv2DBackpropInput, simdConv2DBackpropFilter, c.x, fshape, dy, attrs);
        expect(taken, c.name).to.deep.equal([c.simd, c.simd]);
      }
    });
  });

  it('AdamW (ConvNeXtAdamW): three steps give the same bits as the composite, and cpu to float32 rounding', async () => {
    const shapes = [[7, 7, 8, 1], [13], [16, 24]]; // 13: the scalar tail
    const run = (): Float32Array[] => {
      const params = new Map(shapes.map((s, i) => [`p${i}`, tf.variable(tf.tensor(randn(tf.util.sizeFromShape(s), `adamw-p${i}`), s))]));
      const groups = new Map(shapes.map((s, i) => [`p${i}`, { lrScale: i === 2 ? 0.5 : 1, decay: s.length > 1 }]));
      const opt = new AdamW(params, groups, { weightDecay: 0.05 });
      for (let t = 0; t < 3; t++) {
        const grads = new Map(shapes.map((s, i) => [`p${i}`, tf.tensor(randn(tf.util.sizeFromShape(s), `adamw-g${i}-${t}`, 0.1), s)]));
        opt.apply(grads, 1e-3 * (t + 1));
        tf.dispose([...grads.values()]);
      }
      const out = [...params.values(), ...opt.state().m.values(), ...opt.state().v.values()].map((x) => x.dataSync() as Float32Array);
      opt.dispose();
      tf.dispose([...params.values()]);
      return out;
    };
    expect(await kernelsOf(run))
      .to.include(ADAMW_KERNEL)
      .and.not.include('Sqrt');
    const { ours, without, cpu } = await threeWays(run);
    ours.forEach((o, i) => {
      expectClose(o, without[i], 0, 0);
      expectClose(o, cpu[i], 1e-6 * scaleOf(cpu[i]), 0);
    });
  });

  it('Identity shares the data: a clone outlives its source, nothing is copied or left behind', () => {
    const ids = tf.backend().numDataIds();
    const x = tf.tensor1d([1, 2, 3, 4]);
    const y = tf.clone(x);
    expect(tf.backend().numDataIds()).to.equal(ids + 1);
    x.dispose();
    expect(Array.from(y.dataSync())).to.deep.equal([1, 2, 3, 4]);
    y.dispose();
    expect(tf.backend().numDataIds()).to.equal(ids);
  });

  it('a block-like forward + backward leaves no tensors and no heap data behind', () => {
    const x = tf.randomNormal([2, 8, 8, 16]);
    const dw = tf.randomNormal([7, 7, 16, 1]);
    const w1 = tf.randomNormal([16, 64], 0, 0.2);
    const b1 = tf.zeros([64]);
    const lnw = tf.ones([16]);
    const lnb = tf.zeros([16]);
    const step = () =>
      tf.tidy(() => {
        const f = (a: tf.Tensor, k: tf.Tensor, w: tf.Tensor, b: tf.Tensor, g: tf.Tensor, h: tf.Tensor) =>
          tf.sum(
            gelu(
              linear(
                layerNorm(tf.depthwiseConv2d(a as tf.Tensor4D, k as tf.Tensor4D, 1, 'same'), g as tf.Tensor1D, h as tf.Tensor1D),
                w as tf.Tensor2D,
                b as tf.Tensor1D,
              ),
            ),
          );
        tf.grads(f)([x, dw, w1, b1, lnw, lnb]).forEach((t) => t.dataSync());
      });
    step();
    const tensors = tf.memory().numTensors;
    const ids = tf.backend().numDataIds();
    for (let i = 0; i < 5; i++) step();
    expect(tf.memory().numTensors).to.equal(tensors);
    expect(tf.backend().numDataIds()).to.equal(ids);
    tf.dispose([x, dw, w1, b1, lnw, lnb]);
  });
});
