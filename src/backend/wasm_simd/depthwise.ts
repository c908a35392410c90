/**
 * 7x7 (any odd k) depthwise convolution for the wasm backend, from depthwise_nhwc.wat.
 *
 * tfjs-backend-wasm hands depthwise convs to XNNPACK, whose build has no 49-tap depthwise
 * micro-kernel: a 7x7 runs as a grouped GEMM with one channel per group, ~1 GMAC/s (and 30% of a
 * ConvNeXt-T forward). The SIMD kernel runs ~9 GMAC/s on one thread and gives the same bits.
 * It takes the stride-1, 'same', multiplier-1, float32 NHWC case with C % 4 == 0 (every ConvNeXt
 * block); anything else goes to the original kernel unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import { HeapBackend, KernelArgs, float32Inputs, heapOffset, simdKernelsFor } from './kernels';

/** Geometry attributes of the convolutions (depthwise and patchify) and of their gradients. */
export interface ConvGeometry {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** tfjs's conv geometry (output size, padding, strides) of an NHWC conv of `xShape` with filter `filterShape`. */
export function convInfo(xShape: number[], filterShape: number[], attrs: ConvGeometry, depthwise: boolean): tf.backend_util.Conv2DInfo {
  type Shape4 = [number, number, number, number];
  return tf.backend_util.computeConv2DInfo(
    xShape as Shape4,
    filterShape as Shape4,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    depthwise,
    'channelsLast',
  );
}

interface DepthwiseAttrs extends ConvGeometry {
  dataFormat?: 'NHWC' | 'NCHW';
  activation?: string;
}

/**
 * Whether a depthwise conv of `xShape` (NHWC) with a k x k x C x 1 filter is one the kernels take:
 * k odd, stride 1, dilation 1, 'same' padding, C % 4 == 0, not empty.
 */
export function sameStride1(xShape: number[], filterShape: number[], attrs: ConvGeometry): boolean {
  if (xShape.length !== 4 || filterShape.length !== 4) return false;
  const [k, kw, fc, mult] = filterShape;
  const c = xShape[3];
  if (k !== kw || k % 2 !== 1 || fc !== c || mult !== 1 || c % 4 !== 0 || xShape[0] * xShape[1] * xShape[2] === 0) return false;
  const info = convInfo(xShape, filterShape, attrs, true);
  const p = (k - 1) / 2;
  const { top, left, bottom, right } = info.padInfo;
  const unit = info.strideHeight === 1 && info.strideWidth === 1 && info.dilationHeight === 1 && info.dilationWidth === 1;
  return unit && top === p && left === p && bottom === p && right === p;
}

/** Runs the SIMD kernel if this call is one it takes; returns null otherwise. */
export function simdDepthwise(args: KernelArgs): tf.TensorInfo | null {
  const { bias, preluActivationWeights } = args.inputs;
  const attrs = (args.attrs ?? {}) as unknown as DepthwiseAttrs;
  const t = float32Inputs(args, ['x', 'filter']);
  if (!t || preluActivationWeights || (bias && bias.dtype !== 'float32')) return null;
  if (attrs.activation !== undefined && attrs.activation !== 'linear') return null;
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC' || !sameStride1(t.x.shape, t.filter.shape, attrs)) return null;
  const [n, h, w, c] = t.x.shape;
  if (bias && tf.util.sizeFromShape(bias.shape) !== c) return null;
  const kernels = simdKernelsFor(args.backend);
  if (!kernels) return null;
  const backend = args.backend as HeapBackend;
  const out = backend.makeOutput(t.x.shape, 'float32');
  const k = t.filter.shape[0];
  kernels.depthwise_nhwc(
    heapOffset(backend, t.x),
    heapOffset(backend, t.filter),
    bias ? heapOffset(backend, bias) : 0,
    heapOffset(backend, out),
    n,
    h,
    w,
    c,
    k,
  );
  return out;
}
