/**
 * The LayerNorm gradient kernel (LAYER_NORM_GRAD_KERNEL, see src/layers/layer_norm.ts) for the wasm
 * backend, from layer_norm_grad.wat: dx, dweight and dbias in one kernel (the statistics recomputed
 * per row as the forward computes them) instead of the composite's ~25 kernels and reductions.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LAYER_NORM_GRAD_KERNEL } from '../../kernel_names';
import { HeapBackend, heapOffset, simdKernelsFor } from './kernels';

export const layerNormGradKernelConfig: tf.KernelConfig = {
  kernelName: LAYER_NORM_GRAD_KERNEL,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const [x, weight, dy] = [inputs.x, inputs.weight, inputs.dy] as tf.TensorInfo[];
    const eps = (attrs as { eps: number }).eps;
    const kernels = simdKernelsFor(backend);
    const c = x.shape[x.shape.length - 1];
    const size = tf.util.sizeFromShape(x.shape);
    const ok =
      [x, weight, dy].every((t) => t.dtype === 'float32') &&
      c % 4 === 0 &&
      tf.util.sizeFromShape(weight.shape) === c &&
      tf.util.sizeFromShape(dy.shape) === size;
    if (!kernels || !ok) {
      throw new Error(`${LAYER_NORM_GRAD_KERNEL}: needs float32 x and dy [..., C] with C % 4 == 0 and a [C] weight on the wasm backend`);
    }
    const b = backend as HeapBackend;
    const dx = b.makeOutput(x.shape, 'float32');
    const dw = b.makeOutput([c], 'float32');
    const db = b.makeOutput([c], 'float32');
    kernels.layer_norm_grad_f32(
      heapOffset(b, x),
      heapOffset(b, weight),
      heapOffset(b, dy),
      heapOffset(b, dx),
      heapOffset(b, dw),
      heapOffset(b, db),
      size / c,
      c,
      eps,
    );
    return [dx, dw, db];
  },
};
