/**
 * Gradients of the patchify convolutions (stride = kernel = s, 'valid', NHWC: ConvNeXt's 4x4/4 stem
 * and 2x2/2 downsampling layers) on the wasm backend, as matrix products over the patch matrix
 * X [N*OH*OW, s*s*Cin] (patches.wat) and the filter read as W [s*s*Cin, Cout] (HWIO is that matrix):
 *
 *   Conv2DBackpropFilter:  dW = X^T dy                    (gemm_tn_f32)
 *   Conv2DBackpropInput:   dX = dy W^T, scattered back    (gemm_nt_f32, then unpatches_f32)
 *
 * In front of the package's Conv2DBackpropInput (a scalar C++ loop) and our TypeScript
 * Conv2DBackpropFilter (src/backend/wasm_kernels); every other call goes to them unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import { HeapBackend, heapOffset, simdKernelsFor } from './kernels';
import { KC, MC, packedAFor, scratchFor } from './matmul';

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

interface ConvGradAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dilations?: number | [number, number];
}

/** The patch geometry if this conv is a patchify one we take, else null. */
function patchify(
  xShape: number[],
  filterShape: number[],
  attrs: ConvGradAttrs,
): { n: number; h: number; w: number; c: number; oh: number; ow: number; s: number; cout: number } | null {
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC' || xShape.length !== 4 || filterShape.length !== 4) return null;
  const [fh, fw, fc, cout] = filterShape;
  const [n, h, w, c] = xShape;
  if (fh !== fw || fc !== c || cout % 8 !== 0 || (fh * fw * c) % 8 !== 0) return null;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const { top, left, bottom, right } = info.padInfo;
  if (info.strideHeight !== fh || info.strideWidth !== fw || info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  if (top || left || bottom || right || info.outHeight * info.outWidth * n === 0) return null;
  return { n, h, w, c, oh: info.outHeight, ow: info.outWidth, s: fh, cout };
}

/**
 * What both patchify-conv gradients share: the geometry (null unless a patchify conv whose dy fits),
 * our kernels on this backend, and the [rows, cols] patch matrix on the heap (the caller disposes it).
 */
function patchCall(args: Args, inputShape: number[], filterShape: number[], dy: tf.TensorInfo) {
  const g = patchify(inputShape, filterShape, (args.attrs ?? {}) as unknown as ConvGradAttrs);
  if (!g || dy.shape.join() !== [g.n, g.oh, g.ow, g.cout].join()) return null;
  const kernels = simdKernelsFor(args.backend);
  if (!kernels) return null;
  const backend = args.backend as HeapBackend;
  const rows = g.n * g.oh * g.ow;
  const cols = g.s * g.s * g.c;
  return { g, kernels, backend, rows, cols, patches: backend.makeOutput([rows, cols], 'float32') };
}

/** Conv2DBackpropFilter of a patchify conv: dW = X^T dy; null if not taken. */
export function simdConv2DBackpropFilter(args: Args): tf.TensorInfo | null {
  const { x, dy } = args.inputs;
  const attrs = (args.attrs ?? {}) as unknown as ConvGradAttrs & { filterShape: number[] };
  if (!x || !dy || x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const c = patchCall(args, x.shape, attrs.filterShape, dy);
  if (!c) return null;
  const { g, kernels, backend, rows, cols, patches } = c;
  const out = backend.makeOutput(attrs.filterShape, 'float32');
  kernels.patches_f32(heapOffset(backend, x), heapOffset(backend, patches), g.n, g.oh, g.ow, g.s, g.c, g.h, g.w);
  kernels.gemm_tn_f32(
    heapOffset(backend, patches),
    heapOffset(backend, dy),
    0,
    heapOffset(backend, out),
    cols,
    rows,
    g.cout,
    scratchFor(backend),
    KC,
    packedAFor(backend),
    MC,
  );
  backend.disposeData(patches.dataId);
  return out;
}

/** Conv2DBackpropInput of a patchify conv: dX = dy W^T scattered back to the image; null if not taken. */
export function simdConv2DBackpropInput(args: Args): tf.TensorInfo | null {
  const { dy, filter } = args.inputs;
  const attrs = (args.attrs ?? {}) as unknown as ConvGradAttrs & { inputShape: number[] };
  if (!dy || !filter || dy.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  const c = patchCall(args, attrs.inputShape, filter.shape, dy);
  if (!c) return null;
  const { g, kernels, backend, rows, cols, patches } = c;
  const out = backend.makeOutput(attrs.inputShape, 'float32');
  kernels.gemm_nt_f32(
    heapOffset(backend, dy),
    heapOffset(backend, filter),
    0,
    heapOffset(backend, patches),
    rows,
    g.cout,
    cols,
    scratchFor(backend),
    KC,
    packedAFor(backend),
    MC,
  );
  kernels.unpatches_f32(heapOffset(backend, patches), heapOffset(backend, out), g.n, g.oh, g.ow, g.s, g.c, g.h, g.w);
  backend.disposeData(patches.dataId);
  return out;
}
