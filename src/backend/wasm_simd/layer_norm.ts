/**
 * The LayerNorm kernel (LAYER_NORM_KERNEL, see src/layers/layer_norm.ts) for the wasm backend, from
 * layer_norm.wat: one pass per row instead of the composite's nine kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LAYER_NORM_KERNEL } from '../../kernel_names';
import { HeapBackend, heapOffset, simdKernelsFor } from './kernels';

export const layerNormKernelConfig: tf.KernelConfig = {
  kernelName: LAYER_NORM_KERNEL,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const [x, weight, bias] = [inputs.x, inputs.weight, inputs.bias] as tf.TensorInfo[];
    const eps = (attrs as { eps: number }).eps;
    const kernels = simdKernelsFor(backend);
    const c = x.shape[x.shape.length - 1];
    const ok = [x, weight, bias].every((t) => t.dtype === 'float32') && c % 4 === 0;
    if (!kernels || !ok || tf.util.sizeFromShape(weight.shape) !== c || tf.util.sizeFromShape(bias.shape) !== c) {
      throw new Error(`${LAYER_NORM_KERNEL}: needs float32 [..., C] with C % 4 == 0 and [C] weight and bias on the wasm backend`);
    }
    const b = backend as HeapBackend;
    const out = b.makeOutput(x.shape, 'float32');
    const rows = tf.util.sizeFromShape(x.shape) / c;
    kernels.layer_norm_f32(heapOffset(b, x), heapOffset(b, weight), heapOffset(b, bias), heapOffset(b, out), rows, c, eps);
    return out;
  },
};
