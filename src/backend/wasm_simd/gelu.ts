/**
 * The GELU kernel (GELU_KERNEL, see src/layers/gelu.ts) for the wasm backend, from gelu.wat: one
 * pass instead of the composite's five elementwise kernels (mul, mul, erf, add, mul).
 */
import * as tf from '@tensorflow/tfjs-core';
import { GELU_KERNEL } from '../../kernel_names';
import { HeapBackend, heapOffset, simdKernelsFor } from './kernels';

export const geluKernelConfig: tf.KernelConfig = {
  kernelName: GELU_KERNEL,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend }) => {
    const x = inputs.x as tf.TensorInfo;
    const kernels = simdKernelsFor(backend);
    const size = tf.util.sizeFromShape(x.shape);
    if (!kernels || x.dtype !== 'float32' || size % 4 !== 0) {
      throw new Error(`${GELU_KERNEL}: needs float32 with size % 4 == 0 on the wasm backend, got ${x.dtype} [${x.shape}]`);
    }
    const b = backend as HeapBackend;
    const out = b.makeOutput(x.shape, 'float32');
    kernels.gelu_f32(heapOffset(b, x), heapOffset(b, out), size);
    return out;
  },
};
