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
import { HeapBackend, heapOffset, simdKernelsFor } from './kernels';

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

interface GradAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** Whether a conv of `xShape` with a k x k x C x 1 filter is stride 1, dilation 1, 'same', C % 4 == 0. */
function sameStride1(xShape: number[], filterShape: number[], attrs: GradAttrs): boolean {
  if (xShape.length !== 4 || filterShape.length !== 4) return false;
  const [k, kw, fc, mult] = filterShape;
  const c = xShape[3];
  if (k !== kw || k % 2 !== 1 || fc !== c || mult !== 1 || c % 4 !== 0 || xShape[0] * xShape[1] * xShape[2] === 0) return false;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
  const p = (k - 1) / 2;
  const { top, left, bottom, right } = info.padInfo;
  return (
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    top === p &&
    left === p &&
    bottom === p &&
    right === p
  );
}

/** DepthwiseConv2dNativeBackpropInput via the forward kernel on the flipped filter; null if not taken. */
export function simdDepthwiseBackpropInput(args: Args): tf.TensorInfo | null {
  const { dy, filter } = args.inputs;
  const attrs = (args.attrs ?? {}) as unknown as GradAttrs & { inputShape: number[] };
  if (!dy || !filter || dy.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  if (!sameStride1(attrs.inputShape, filter.shape, attrs)) return null;
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
export function simdDepthwiseBackpropFilter(args: Args): tf.TensorInfo | null {
  const { x, dy } = args.inputs;
  const attrs = (args.attrs ?? {}) as unknown as GradAttrs & { filterShape: number[] };
  if (!x || !dy || x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  if (attrs.filterShape?.[0] !== 7 || !sameStride1(x.shape, attrs.filterShape, attrs)) return null;
  if (dy.shape.some((d, i) => d !== x.shape[i])) return null;
  const kernels = simdKernelsFor(args.backend);
  if (!kernels) return null;
  const backend = args.backend as HeapBackend;
  const [n, h, w, c] = x.shape;
  const out = backend.makeOutput(attrs.filterShape, 'float32');
  kernels.depthwise_filter_grad7_nhwc(heapOffset(backend, x), heapOffset(backend, dy), heapOffset(backend, out), n, h, w, c);
  return out;
}
