/**
 * The LayerNorm kernel (LAYER_NORM_KERNEL, see src/layers/layer_norm.ts) for the wasm backend, from
 * layer_norm.wat: one pass per row instead of the composite's nine kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LAYER_NORM_KERNEL } from '../../kernel_names';
import { HeapBackend, heapOffset, simdKernelsFor } from './kernels';

/**
 * What the LayerNorm kernels (this and layer_norm_grad.ts) check and take first: float32 x [..., C]
 * with C % 4 == 0, a [C] weight, `others` float32 of the sizes given (`needs` says which, for the
 * error thrown otherwise); returns our kernels on the backend, C, the rows and eps.
 */
export function layerNormCall(
  kernel: string,
  backend: unknown,
  attrs: tf.NamedAttrMap | undefined,
  x: tf.TensorInfo,
  weight: tf.TensorInfo,
  others: [tf.TensorInfo, number][],
  needs: string,
) {
  const kernels = simdKernelsFor(backend);
  const c = x.shape[x.shape.length - 1];
  const ok =
    [x, weight, ...others.map(([t]) => t)].every((t) => t.dtype === 'float32') &&
    c % 4 === 0 &&
    tf.util.sizeFromShape(weight.shape) === c &&
    others.every(([t, size]) => tf.util.sizeFromShape(t.shape) === size);
  if (!kernels || !ok) {
    throw new Error(`${kernel}: needs float32 x [..., C] with C % 4 == 0, a [C] weight and ${needs} on the wasm backend`);
  }
  return { kernels, b: backend as HeapBackend, c, rows: tf.util.sizeFromShape(x.shape) / c, eps: (attrs as unknown as { eps: number }).eps };
}

export const layerNormKernelConfig: tf.KernelConfig = {
  kernelName: LAYER_NORM_KERNEL,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const [x, weight, bias] = [inputs.x, inputs.weight, inputs.bias] as tf.TensorInfo[];
    const { kernels, b, c, rows, eps } = layerNormCall(LAYER_NORM_KERNEL, backend, attrs, x, weight, [[bias, x.shape[x.shape.length - 1]]], 'a [C] bias');
    const out = b.makeOutput(x.shape, 'float32');
    kernels.layer_norm_f32(heapOffset(b, x), heapOffset(b, weight), heapOffset(b, bias), heapOffset(b, out), rows, c, eps);
    return out;
  },
};
