/**
 * Registers our SIMD kernels on the 'wasm' backend, in front of the package's own: each one
 * handles the calls it is written for and passes every other call to the kernel it replaces.
 *
 *   DepthwiseConv2dNative, FusedDepthwiseConv2D   -> depthwise.ts (stride-1 'same' NHWC, C % 4 == 0)
 *   _FusedMatMul, BatchMatMul                      -> matmul.ts (single-threaded backend, the threaded one
 *                                                     with kernel threads, and transposed products on both
 *                                                     builds; no activation, one B [K, N], N % 8 == 0)
 *   DepthwiseConv2dNativeBackpropInput/Filter      -> depthwise_grad.ts (stride-1 'same' NHWC, C % 4 == 0;
 *                                                     filter: 7x7), in front of src/backend/wasm_kernels
 *   Conv2DBackpropFilter, Conv2DBackpropInput      -> conv_patch_grad.ts (stride = kernel, 'valid', NHWC:
 *                                                     the stem and downsampling convs)
 *   Identity                                       -> shares the input's data (refcount) where the package
 *                                                     copies it: the tape keeps a clone of every tensor a
 *                                                     gradient needs (264 copies per ConvNeXt-atto step)
 *
 * and adds the kernels of our own ops and of their gradients, which other backends run as
 * composites of tfjs-core ops:
 *
 *   ConvNeXtGelu, ConvNeXtGeluGrad            -> gelu.ts, gelu_grad.ts              (src/layers/gelu.ts)
 *   ConvNeXtLayerNorm, ConvNeXtLayerNormGrad  -> layer_norm.ts, layer_norm_grad.ts  (src/layers/layer_norm.ts)
 *   ConvNeXtScaledResidual                    -> scaled_residual.ts                 (src/layers/scaled_residual.ts)
 *   ConvNeXtLinearGrad                        -> linear_grad.ts                     (src/layers/linear.ts)
 *   ConvNeXtAdamW                             -> adamw.ts                           (src/train/adamw.ts)
 *
 * Gradients are registered per kernel name, so training is unaffected. On the threaded build,
 * initBackend starts kernel threads (pool.ts) over which the depthwise, GELU (and its gradient),
 * LayerNorm, layer scale + residual and GEMM kernels share each large enough call (split.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerWasmTrainingKernels } from '../wasm_gradients';
import { adamwKernelConfig } from './adamw';
import { simdConv2DBackpropFilter, simdConv2DBackpropInput } from './conv_patch_grad';
import { simdDepthwise } from './depthwise';
import { simdDepthwiseBackpropFilter, simdDepthwiseBackpropInput } from './depthwise_grad';
import { geluKernelConfig } from './gelu';
import { geluGradKernelConfig } from './gelu_grad';
import { layerNormKernelConfig } from './layer_norm';
import { layerNormGradKernelConfig } from './layer_norm_grad';
import { linearGradKernelConfig } from './linear_grad';
import { simdMatMul } from './matmul';
import { scaledResidualKernelConfig } from './scaled_residual';

export { simdKernelsFor } from './kernels';

type FastPath = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => tf.TensorInfo | null;

/** Tensors are immutable and no kernel writes its inputs, so a clone can share the data, as on cpu. */
const shareIdentity: FastPath = ({ inputs, backend }) => {
  const x = inputs.x;
  const b = backend as { incRef?: (dataId: object) => void };
  if (!x || !['float32', 'int32', 'bool'].includes(x.dtype) || typeof b.incRef !== 'function') return null;
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

const FAST_PATHS: Record<string, FastPath> = {
  DepthwiseConv2dNative: simdDepthwise,
  FusedDepthwiseConv2D: simdDepthwise,
  _FusedMatMul: simdMatMul,
  BatchMatMul: simdMatMul,
  DepthwiseConv2dNativeBackpropInput: simdDepthwiseBackpropInput,
  DepthwiseConv2dNativeBackpropFilter: simdDepthwiseBackpropFilter,
  Conv2DBackpropFilter: simdConv2DBackpropFilter,
  Conv2DBackpropInput: simdConv2DBackpropInput,
  Identity: shareIdentity,
};

/** Kernels of our own ops, for 'wasm' only. */
const OWN_KERNELS: tf.KernelConfig[] = [
  geluKernelConfig,
  geluGradKernelConfig,
  layerNormKernelConfig,
  layerNormGradKernelConfig,
  scaledResidualKernelConfig,
  linearGradKernelConfig,
  adamwKernelConfig,
];

/** The package's kernels we stand in front of, by name (to restore them). */
const replaced = new Map<string, tf.KernelConfig>();

/**
 * Puts the SIMD kernels in front of the wasm backend's own. Idempotent; a no-op for a kernel the
 * backend does not register. @returns the kernel names now served by a SIMD kernel.
 */
export function registerSimdKernels(): string[] {
  registerWasmTrainingKernels(); // the kernels the depthwise gradients fall back to
  for (const [name, fast] of Object.entries(FAST_PATHS)) {
    if (replaced.has(name)) continue;
    const original = tf.getKernel(name, 'wasm');
    if (!original) continue;
    const kernelFunc = ((args: Parameters<tf.KernelFunc>[0]) => fast(args) ?? original.kernelFunc(args)) as tf.KernelFunc;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...original, kernelFunc });
    replaced.set(name, original);
  }
  for (const config of OWN_KERNELS) {
    if (!tf.getKernel(config.kernelName, 'wasm')) tf.registerKernel(config);
  }
  return [...replaced.keys(), ...OWN_KERNELS.map((k) => k.kernelName)];
}

/** Gives the wasm backend its own kernels back (for A/B comparisons). */
export function unregisterSimdKernels(): void {
  for (const [name, original] of replaced) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(original);
  }
  replaced.clear();
  for (const config of OWN_KERNELS) {
    if (tf.getKernel(config.kernelName, 'wasm')) tf.unregisterKernel(config.kernelName, 'wasm');
  }
}
