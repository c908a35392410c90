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
import { HeapBackend, KernelArgs, float32Inputs, heapOffset, simdKernelsFor } from './kernels';
import { ConvGeometry, convInfo } from './depthwise';
import { gemmOn } from './matmul';

interface ConvGradAttrs extends ConvGeometry {
  dataFormat?: 'NHWC' | 'NCHW';
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
  const info = convInfo(xShape, filterShape, attrs, false);
  const { top, left, bottom, right } = info.padInfo;
  if (info.strideHeight !== fh || info.strideWidth !== fw || info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  if (top || left || bottom || right || info.outHeight * info.outWidth * n === 0) return null;
  return { n, h, w, c, oh: info.outHeight, ow: info.outWidth, s: fh, cout };
}

/**
 * What both patchify-conv gradients share: their float32 dy and `operand` (x or the filter), the
 * geometry (null unless a patchify conv whose dy fits), our kernels on this backend, the output (of
 * the attribute `outShape`) and the [rows, cols] patch matrix on the heap (the caller disposes it).
 */
function patchCall(args: KernelArgs, operand: 'x' | 'filter') {
  const attrs = (args.attrs ?? {}) as unknown as ConvGradAttrs & { filterShape: number[]; inputShape: number[] };
  const t = float32Inputs(args, ['dy', operand]);
  if (!t) return null;
  const [inputShape, filterShape] = operand === 'x' ? [t[operand].shape, attrs.filterShape] : [attrs.inputShape, t[operand].shape];
  const g = patchify(inputShape, filterShape, attrs);
  if (!g || t.dy.shape.join() !== [g.n, g.oh, g.ow, g.cout].join()) return null;
  const kernels = simdKernelsFor(args.backend);
  if (!kernels) return null;
  const backend = args.backend as HeapBackend;
  const rows = g.n * g.oh * g.ow;
  const cols = g.s * g.s * g.c;
  const patches = backend.makeOutput([rows, cols], 'float32');
  const out = backend.makeOutput(operand === 'x' ? filterShape : inputShape, 'float32');
  const at = (x: tf.TensorInfo): number => heapOffset(backend, x);
  return { g, kernels, backend, rows, cols, patches, out, dy: at(t.dy), operand: at(t[operand]), at };
}

/** Conv2DBackpropFilter of a patchify conv: dW = X^T dy; null if not taken. */
export function simdConv2DBackpropFilter(args: KernelArgs): tf.TensorInfo | null {
  const c = patchCall(args, 'x');
  if (!c) return null;
  const { g, kernels, backend, rows, cols, patches, out, at } = c;
  kernels.patches_f32(c.operand, at(patches), g.n, g.oh, g.ow, g.s, g.c, g.h, g.w);
  gemmOn(backend, kernels, 'gemm_tn_f32', [at(patches), c.dy, 0, at(out)], cols, rows, g.cout);
  backend.disposeData(patches.dataId);
  return out;
}

/** Conv2DBackpropInput of a patchify conv: dX = dy W^T scattered back to the image; null if not taken. */
export function simdConv2DBackpropInput(args: KernelArgs): tf.TensorInfo | null {
  const c = patchCall(args, 'filter');
  if (!c) return null;
  const { g, kernels, backend, rows, cols, patches, out, at } = c;
  gemmOn(backend, kernels, 'gemm_nt_f32', [c.dy, c.operand, 0, at(patches)], rows, g.cout, cols);
  kernels.unpatches_f32(at(patches), at(out), g.n, g.oh, g.ow, g.s, g.c, g.h, g.w);
  backend.disposeData(patches.dataId);
  return out;
}
