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
import { HeapBackend, heapOffset, simdKernelsFor } from './kernels';

interface DepthwiseAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dataFormat?: 'NHWC' | 'NCHW';
  activation?: string;
}

/** Runs the SIMD kernel if this call is one it takes; returns null otherwise. */
export function simdDepthwise(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo | null {
  const { x, filter, bias, preluActivationWeights } = args.inputs;
  const attrs = (args.attrs ?? {}) as unknown as DepthwiseAttrs;
  if (!x || !filter || preluActivationWeights) return null;
  if (attrs.activation !== undefined && attrs.activation !== 'linear') return null;
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC' || x.shape.length !== 4 || filter.shape.length !== 4) return null;
  if (x.dtype !== 'float32' || filter.dtype !== 'float32' || (bias && bias.dtype !== 'float32')) return null;
  const [n, h, w, c] = x.shape;
  const [k, kw, fc, mult] = filter.shape;
  if (k !== kw || k % 2 !== 1 || fc !== c || mult !== 1 || c % 4 !== 0 || n * h * w === 0) return null;
  if (bias && tf.util.sizeFromShape(bias.shape) !== c) return null;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
  const p = (k - 1) / 2;
  const { top, left, bottom, right } = info.padInfo;
  if (info.strideHeight !== 1 || info.strideWidth !== 1 || info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  if (top !== p || left !== p || bottom !== p || right !== p) return null;
  const kernels = simdKernelsFor(args.backend);
  if (!kernels) return null;
  const backend = args.backend as HeapBackend;
  const out = backend.makeOutput(x.shape, 'float32');
  kernels.depthwise_nhwc(heapOffset(backend, x), heapOffset(backend, filter), bias ? heapOffset(backend, bias) : 0, heapOffset(backend, out), n, h, w, c, k);
  return out;
}
