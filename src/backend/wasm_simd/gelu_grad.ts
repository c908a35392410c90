/**
 * The GELU gradient kernel (GELU_GRAD_KERNEL, see src/layers/gelu.ts) for the wasm backend, from
 * gelu_grad.wat: dx = dy * (Phi(x) + x phi(x)) in one pass instead of the composite's eleven
 * elementwise kernels (the package's Exp and Erf are scalar loops: ~60% of the composite's time).
 */
import * as tf from '@tensorflow/tfjs-core';
import { GELU_GRAD_KERNEL } from '../../kernel_names';
import { HeapBackend, heapOffset, simdKernelsFor } from './kernels';

export const geluGradKernelConfig: tf.KernelConfig = {
  kernelName: GELU_GRAD_KERNEL,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend }) => {
    const [x, dy] = [inputs.x, inputs.dy] as tf.TensorInfo[];
    const kernels = simdKernelsFor(backend);
    const size = tf.util.sizeFromShape(x.shape);
    if (!kernels || x.dtype !== 'float32' || dy.dtype !== 'float32' || size % 4 !== 0 || tf.util.sizeFromShape(dy.shape) !== size) {
      throw new Error(`${GELU_GRAD_KERNEL}: needs float32 x and dy of one size, % 4 == 0, on the wasm backend, got [${x.shape}] and [${dy.shape}]`);
    }
    const b = backend as HeapBackend;
    const out = b.makeOutput(x.shape, 'float32');
    kernels.gelu_grad_f32(heapOffset(b, x), heapOffset(b, dy), heapOffset(b, out), size);
    return out;
  },
};
