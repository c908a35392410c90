/**
 * The layer scale + residual kernel (SCALED_RESIDUAL_KERNEL, see src/layers/scaled_residual.ts) for
 * the wasm backend, from scaled_residual.wat: out = x + gamma * y in one pass instead of the package's
 * Multiply and Add (each one thread, each a full pass over the feature map).
 */
import * as tf from '@tensorflow/tfjs-core';
import { SCALED_RESIDUAL_KERNEL } from '../../kernel_names';
import { HeapBackend, heapOffset, simdKernelsFor } from './kernels';

export const scaledResidualKernelConfig: tf.KernelConfig = {
  kernelName: SCALED_RESIDUAL_KERNEL,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend }) => {
    const [x, y, gamma] = [inputs.x, inputs.y, inputs.gamma] as tf.TensorInfo[];
    const kernels = simdKernelsFor(backend);
    const c = x.shape[x.shape.length - 1];
    const size = tf.util.sizeFromShape(x.shape);
    const ok =
      [x, y, gamma].every((t) => t.dtype === 'float32') &&
      tf.util.arraysEqual(x.shape, y.shape) &&
      size > 0 &&
      c % 4 === 0 &&
      tf.util.sizeFromShape(gamma.shape) === c;
    if (!kernels || !ok) {
      throw new Error(`${SCALED_RESIDUAL_KERNEL}: needs float32 x, y [..., C] of one shape with C % 4 == 0 and a [C] gamma on the wasm backend`);
    }
    const b = backend as HeapBackend;
    const out = b.makeOutput(x.shape, 'float32');
    kernels.scaled_residual_f32(heapOffset(b, x), heapOffset(b, y), heapOffset(b, gamma), heapOffset(b, out), size / c, c);
    return out;
  },
};
