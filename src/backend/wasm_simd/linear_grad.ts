/**
 * The Linear layer's gradient kernel (LINEAR_GRAD_KERNEL, see src/layers/linear.ts) for the wasm
 * backend: for y = x W + b with x [P, Cin], W [Cin, Cout], dy [P, Cout],
 *
 *   dx = dy W^T   (gemm_nt_f32: W read as it is stored, gathered into gemm.wat's panel)
 *   dW = x^T dy   (gemm_tn_f32: x walked column-wise, no transpose materialised)
 *   db = sum of dy over the P rows   (colsum_f32)
 *
 * The composite (tf.transpose + two matMuls + tf.sum) copies both transposes through the heap
 * first: x^T alone is a full copy of the layer's input (8192 x 160 floats in a ConvNeXt-atto stage
 * at batch 32, 64 px). Same products, same summation order, same bits as transpose + gemm.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LINEAR_GRAD_KERNEL } from '../../kernel_names';
import { HeapBackend, heapOffset, simdKernelsFor } from './kernels';
import { gemmOn } from './matmul';

export const linearGradKernelConfig: tf.KernelConfig = {
  kernelName: LINEAR_GRAD_KERNEL,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend }) => {
    const [x, w, dy] = [inputs.x, inputs.w, inputs.dy] as tf.TensorInfo[];
    const kernels = simdKernelsFor(backend);
    const [p, cin] = x.shape;
    const cout = w.shape[1];
    const ok =
      [x, w, dy].every((t) => t.dtype === 'float32' && t.shape.length === 2) &&
      w.shape[0] === cin &&
      dy.shape[0] === p &&
      dy.shape[1] === cout &&
      p > 0 &&
      cin % 8 === 0 &&
      cout % 8 === 0;
    if (!kernels || !ok) {
      throw new Error(
        `${LINEAR_GRAD_KERNEL}: needs float32 x [P, Cin], w [Cin, Cout], dy [P, Cout] with P > 0 and Cin, Cout % 8 == 0 on the wasm backend, ` +
          `got [${x.shape}], [${w.shape}], [${dy.shape}]`,
      );
    }
    const b = backend as HeapBackend;
    const dx = b.makeOutput([p, cin], 'float32');
    const dw = b.makeOutput([cin, cout], 'float32');
    const db = b.makeOutput([cout], 'float32');
    const [px, pw, pdy] = [heapOffset(b, x), heapOffset(b, w), heapOffset(b, dy)];
    gemmOn(b, kernels, 'gemm_nt_f32', [pdy, pw, 0, heapOffset(b, dx)], p, cout, cin);
    gemmOn(b, kernels, 'gemm_tn_f32', [px, pdy, 0, heapOffset(b, dw)], cin, p, cout);
    kernels.colsum_f32(pdy, heapOffset(b, db), p, cout, 0);
    return [dx, dw, db];
  },
};
