/**
 * Calls of the SIMD kernels that split.ts shares among threads, at sizes below and above its split
 * thresholds (MIN_PART_*), odd ones included; for test/backend/kernel_split.test.ts (a pool that runs
 * the parts in this thread) and kernel_threads.test.ts (the real kernel threads, in a child process).
 * Each case runs its kernel on seeded data on the current wasm backend's heap and returns the output.
 */
import * as tf from '@tensorflow/tfjs-core';
import { HeapBackend, SimdExports, heapOffset } from '../../src/backend/wasm_simd/kernels';
import { KC, MC, packedAFor, scratchFor } from '../../src/backend/wasm_simd/matmul';
import { randn } from '../helpers';

export interface KernelCase {
  name: string;
  /** Whether split.ts cuts it into parts with 2 threads. */
  split: boolean;
  run(kernels: SimdExports, backend: HeapBackend): Float32Array;
}

/** Runs `call` with the heap offsets of `inputs` and of an output of `outShape` (starting from `init`), returns the output. */
function onHeap(
  backend: HeapBackend,
  inputs: Float32Array[],
  shapes: number[][],
  outShape: number[],
  init: Float32Array | null,
  call: (ptrs: number[]) => void,
) {
  return tf.tidy(() => {
    const ts = inputs.map((d, i) => tf.tensor(d, shapes[i]));
    const out = init ? tf.tensor(init, outShape) : tf.zeros(outShape);
    call([...ts.map((t) => heapOffset(backend, t)), heapOffset(backend, out)]);
    return out.dataSync() as Float32Array; // read after the call: the kernel wrote the heap
  });
}

function depthwise(n: number, h: number, w: number, c: number, k: number, bias: boolean, split: boolean): KernelCase {
  return {
    name: `depthwise ${k}x${k} [${n}, ${h}, ${w}, ${c}]${bias ? ' + bias' : ''}`,
    split,
    run: (kernels, backend) => {
      const x = randn(n * h * w * c, `dwx${n}${h}${w}${c}`);
      const f = randn(k * k * c, `dwf${k}${c}`, 0.3);
      const b = randn(c, `dwb${c}`);
      return onHeap(backend, [x, f, b], [[n, h, w, c], [k, k, c, 1], [c]], [n, h, w, c], null, ([px, pf, pb, py]) =>
        kernels.depthwise_nhwc(px, pf, bias ? pb : 0, py, n, h, w, c, k),
      );
    },
  };
}

function elementwise(name: 'gelu_f32' | 'gelu_grad_f32', size: number, split: boolean): KernelCase {
  return {
    name: `${name} of ${size}`,
    split,
    run: (kernels, backend) => {
      const x = randn(size, `ex${size}`, 2);
      const dy = randn(size, `edy${size}`);
      if (name === 'gelu_f32') return onHeap(backend, [x], [[size]], [size], null, ([px, py]) => kernels.gelu_f32(px, py, size));
      return onHeap(backend, [x, dy], [[size], [size]], [size], null, ([px, pdy, pdx]) => kernels.gelu_grad_f32(px, pdy, pdx, size));
    },
  };
}

function layerNorm(rows: number, c: number, split: boolean): KernelCase {
  return {
    name: `layer_norm_f32 [${rows}, ${c}]`,
    split,
    run: (kernels, backend) => {
      const x = randn(rows * c, `lnx${rows}${c}`, 3, 1);
      const w = randn(c, `lnw${c}`);
      const b = randn(c, `lnb${c}`);
      return onHeap(backend, [x, w, b], [[rows, c], [c], [c]], [rows, c], null, ([px, pw, pb, py]) => kernels.layer_norm_f32(px, pw, pb, py, rows, c, 1e-6));
    },
  };
}

/** out = x + gamma * y over [rows, C] (gamma false: x + y). */
function scaledResidual(rows: number, c: number, gamma: boolean, split: boolean): KernelCase {
  return {
    name: `scaled_residual_f32 [${rows}, ${c}]${gamma ? '' : ', no gamma'}`,
    split,
    run: (kernels, backend) => {
      const x = randn(rows * c, `srx${rows}${c}`);
      const y = randn(rows * c, `sry${rows}${c}`);
      const g = randn(c, `srg${c}`, 0.5);
      return onHeap(backend, [x, y, g], [[rows, c], [rows, c], [c]], [rows, c], null, ([px, py, pg, pout]) =>
        kernels.scaled_residual_f32(px, py, gamma ? pg : 0, pout, rows, c),
      );
    },
  };
}

type Gemm = 'gemm_f32' | 'gemm_tn_f32' | 'gemm_nt_f32';

/** C[m, n] = op(A) op(B); bias: 'bias' (a [n] row), 'none', or 'accumulate' (C += from a random C). */
function gemm(name: Gemm, m: number, k: number, n: number, bias: 'bias' | 'none' | 'accumulate', split: boolean): KernelCase {
  return {
    name: `${name} ${m} x ${k} x ${n}, ${bias}`,
    split,
    run: (kernels, backend) => {
      const a = randn(m * k, `ga${m}${k}`);
      const b = randn(k * n, `gb${k}${n}`);
      const bv = randn(n, `gbias${n}`);
      const c0 = bias === 'accumulate' ? randn(m * n, `gc${m}${n}`) : null;
      const aShape = name === 'gemm_tn_f32' ? [k, m] : [m, k];
      const bShape = name === 'gemm_nt_f32' ? [n, k] : [k, n];
      return onHeap(backend, [a, b, bv], [aShape, bShape, [n]], [m, n], c0, ([pa, pb, pbias, pc]) =>
        kernels[name](pa, pb, bias === 'bias' ? pbias : bias === 'accumulate' ? -1 : 0, pc, m, k, n, scratchFor(backend), KC, packedAFor(backend), MC),
      );
    },
  };
}

export const KERNEL_CASES: KernelCase[] = [
  depthwise(1, 56, 56, 96, 7, true, true), // ConvNeXt-T stage 1
  depthwise(3, 23, 29, 36, 7, true, true), // odd sizes, rows of several images in one part
  depthwise(1, 13, 7, 12, 7, false, false), // below the threshold
  depthwise(2, 64, 65, 32, 3, true, true), // 3x3
  depthwise(1, 14, 14, 384, 7, true, true), // ConvNeXt-T stage 3: 14 rows, cut into channel blocks too
  depthwise(2, 7, 13, 260, 7, false, true), // channel blocks of a C that is no multiple of 16, rows of 2 images
  depthwise(1, 7, 7, 768, 7, true, true), // stage 4: 7 rows, in channel blocks of 156 (the last 144)
  elementwise('gelu_f32', 300_004, true), // not a multiple of the 16-float alignment
  elementwise('gelu_f32', 150_528, false), // ConvNeXt-T stage 4 at batch 1: below the threshold
  elementwise('gelu_grad_f32', 300_532, true),
  layerNorm(6_001, 96, true),
  layerNorm(3_136, 96, false), // ConvNeXt-T stage 1 at batch 1: below the threshold
  scaledResidual(12_544, 96, true, true), // ConvNeXt-T stage 1 at batch 4
  scaledResidual(27_001, 40, true, true), // C % 16 != 0 (vector tail of each row)
  scaledResidual(27_001, 40, false, true),
  scaledResidual(3_136, 96, true, false), // stage 1 at batch 1: below the threshold
  gemm('gemm_f32', 3_137, 96, 384, 'bias', true), // split by rows (M >= N), M odd
  gemm('gemm_f32', 197, 384, 1_536, 'bias', true), // split by columns (M < N)
  gemm('gemm_f32', 196, 1_536, 384, 'bias', true), // by rows, B (2.4 MB) beyond the L2: larger chunks
  gemm('gemm_f32', 49, 3_072, 768, 'none', true), // stage 4: K > KC (two k blocks)
  gemm('gemm_f32', 5, 40, 16, 'bias', false), // below the threshold
  gemm('gemm_tn_f32', 384, 1_029, 96, 'none', true), // x^T dy: rows of A^T at A's stride
  gemm('gemm_tn_f32', 96, 700, 392, 'accumulate', true), // columns, accumulating
  gemm('gemm_nt_f32', 1_001, 192, 768, 'none', true), // dy W^T: columns of the stored [N, K] B
  gemm('gemm_nt_f32', 2_050, 96, 96, 'accumulate', true),
];

/** Whether two outputs are the same floats bit for bit (NaN patterns included). */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}
