/**
 * Training on the WebAssembly backend. tfjs-backend-wasm 4.22 ships no gradient kernels for
 * convolutions (tfjs #8474), so backprop through ConvNeXt fails there with
 * "Kernel 'X' not registered for backend 'wasm'". Probing a V1 (layer scale, drop path in training
 * mode) and a V2 (GRN) model's softmax cross-entropy gradients plus an Adam/AdamW update showed
 * exactly three missing kernels; everything else (Erf, Rsqrt, Tile, Sum, Mean, fused matMul, Conv2D
 * and Conv2DBackpropInput, ...) exists:
 *
 *   Conv2DBackpropFilter                  stem 4x4/s4 and downsample 2x2/s2 weight gradients
 *   DepthwiseConv2dNativeBackpropFilter   7x7 depthwise weight gradient
 *   DepthwiseConv2dNativeBackpropInput    7x7 depthwise input gradient
 *
 * They are supplied here in TypeScript, reading and writing the wasm heap directly (NHWC; strides,
 * 'same' / 'valid' / numeric / explicit padding, dimRoundingMode, depthwise dilations and channel
 * multipliers; NCHW is refused with a clear error).
 *
 *   import '@tensorflow/tfjs-backend-wasm';
 *   registerWasmTrainingKernels();   // before the first backward pass on 'wasm'
 *
 * Cost (2-core x86, ConvNeXt-atto, batch 8, 64x64, forward + variableGrads): the three kernels
 * take ~60 ms of a ~0.8 s wasm step (cpu backend: ~8.7 s). The step is dominated (~0.55 s) by
 * wasm's own BatchMatMul with transposeA / transposeB, which the matMul gradient uses and which
 * is ~10x slower than an explicit tf.transpose followed by a plain matMul.
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv2dBackpropFilterConfig } from './conv2d_backprop_filter';
import { depthwiseBackpropFilterConfig } from './depthwise_backprop_filter';
import { depthwiseBackpropInputConfig } from './depthwise_backprop_input';

export { conv2dBackpropFilterNHWC } from './conv2d_backprop_filter';
export { depthwiseBackpropFilterNHWC } from './depthwise_backprop_filter';
export { depthwiseBackpropInputNHWC } from './depthwise_backprop_input';

/** The kernels this module can supply, in registration order. */
export const WASM_TRAINING_KERNELS: readonly tf.KernelConfig[] = [conv2dBackpropFilterConfig, depthwiseBackpropFilterConfig, depthwiseBackpropInputConfig];

/**
 * Registers, for backend 'wasm', each training kernel that is not registered yet (a later
 * tfjs-backend-wasm that ships its own keeps it). Idempotent: a second call registers nothing.
 * Works whether or not the wasm backend is loaded or initialised yet (kernels are looked up at
 * run time).
 * @returns the kernel names registered by this call
 */
export function registerWasmTrainingKernels(): string[] {
  const added: string[] = [];
  for (const config of WASM_TRAINING_KERNELS) {
    if (tf.getKernel(config.kernelName, 'wasm') != null) continue;
    tf.registerKernel(config);
    added.push(config.kernelName);
  }
  return added;
}
