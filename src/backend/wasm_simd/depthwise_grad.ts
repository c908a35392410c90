/**
 * The 7x7 depthwise convolution's gradients on the wasm backend, in front of our TypeScript
 * training kernels (src/backend/wasm_kernels), for the calls ConvNeXt makes (stride 1, 'same',
 * multiplier 1, float32 NHWC, C % 4 == 0); anything else goes to those kernels unchanged.
 *
 *   DepthwiseConv2dNativeBackpropInput:  dx = dy correlated with the filter turned by 180 degrees,
 *     'same' padding: exactly the forward convolution, so depthwise_nhwc.wat runs it on a flipped
 *     copy of the filter (k*k*C floats).
 *   DepthwiseConv2dNativeBackpropFilter: depthwise_filter_grad.wat (k = 7; float32 sums in
 *     (n, y, x) order where the TypeScript kernel sums in float64).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConvGeometry, sameStride1 } from './depthwise';
import { HeapBackend, KernelArgs, float32Inputs, heapOffset, simdKernelsFor } from './kernels';

/** DepthwiseConv2dNativeBackpropInput via the forward kernel on the flipped filter; null if not taken. */
export function simdDepthwiseBackpropInput(args: KernelArgs): tf.TensorInfo | null {
  const attrs = (args.attrs ?? {}) as unknown as ConvGeometry & { inputShape: number[] };
  const t = float32Inputs(args, ['dy', 'filter']);
  if (!t || !sameStride1(attrs.inputShape, t.filter.shape, attrs)) return null;
  const { dy, filter } = t;
  const kernels = simdKernelsFor(args.backend);
  if (!kernels) return null;
  const backend = args.backend as HeapBackend;
  const [n, h, w, c] = attrs.inputShape;
  const k = filter.shape[0];
  const flipped = backend.makeOutput(filter.shape, 'float32');
  const out = backend.makeOutput(attrs.inputShape, 'float32');
  // Views after both allocations (an allocation may grow the heap and detach earlier views).
  const src = backend.typedArrayFromHeap(filter);
  const dst = backend.typedArrayFromHeap(flipped);
  const taps = k * k;
  for (let t = 0; t < taps; t++) dst.set(src.subarray((taps - 1 - t) * c, (taps - t) * c), t * c);
  kernels.depthwise_nhwc(heapOffset(backend, dy), heapOffset(backend, flipped), 0, heapOffset(backend, out), n, h, w, c, k);
  backend.disposeData(flipped.dataId);
  return out;
}

/** DepthwiseConv2dNativeBackpropFilter for 7x7 from depthwise_filter_grad.wat; null if not taken. */
export function simdDepthwiseBackpropFilter(args: KernelArgs): tf.TensorInfo | null {
  const attrs = (args.attrs ?? {}) as unknown as ConvGeometry & { filterShape: number[] };
  const t = float32Inputs(args, ['x', 'dy']);
  if (!t || attrs.filterShape?.[0] !== 7 || !sameStride1(t.x.shape, attrs.filterShape, attrs)) return null;
  const { x, dy } = t;
  if (dy.shape.some((d, i) => d !== x.shape[i])) return null;
  const kernels = simdKernelsFor(args.backend);
  if (!kernels) return null;
  const backend = args.backend as HeapBackend;
  const [n, h, w, c] = x.shape;
  const out = backend.makeOutput(attrs.filterShape, 'float32');
  kernels.depthwise_filter_grad7_nhwc(heapOffset(backend, x), heapOffset(backend, dy), heapOffset(backend, out), n, h, w, c);
  return out;
}
