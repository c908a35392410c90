/**
 * The LayerNorm gradient kernel (LAYER_NORM_GRAD_KERNEL, see src/layers/layer_norm.ts) for the wasm
 * backend, from layer_norm_grad.wat: dx, dweight and dbias in one kernel (the statistics recomputed
 * per row as the forward computes them) instead of the composite's ~25 kernels and reductions.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LAYER_NORM_GRAD_KERNEL } from '../../kernel_names';
import { heapOffset } from './kernels';
import { layerNormCall } from './layer_norm';

export const layerNormGradKernelConfig: tf.KernelConfig = {
  kernelName: LAYER_NORM_GRAD_KERNEL,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const [x, weight, dy] = [inputs.x, inputs.weight, inputs.dy] as tf.TensorInfo[];
    const { kernels, b, c, rows, eps } = layerNormCall(
      LAYER_NORM_GRAD_KERNEL,
      backend,
      attrs,
      x,
      weight,
      [[dy, tf.util.sizeFromShape(x.shape)]],
      'dy of the size of x',
    );
    const dx = b.makeOutput(x.shape, 'float32');
    const dw = b.makeOutput([c], 'float32');
    const db = b.makeOutput([c], 'float32');
    const at = (t: tf.TensorInfo): number => heapOffset(b, t);
    kernels.layer_norm_grad_f32(at(x), at(weight), at(dy), at(dx), at(dw), at(db), rows, c, eps);
    return [dx, dw, db];
  },
};
