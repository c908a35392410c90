/**
 * The wasm kernel sets the training benchmarks compare (bench/train_ab.ts, bench/train_profile.ts):
 *
 *   package   the wasm backend's own kernels + our TypeScript training kernels (CONVNEXT_SIMD=0)
 *   forward   + our forward SIMD kernels only (depthwise, GEMM, GELU, LayerNorm): the state before
 *             the backward kernels of issue 11
 *   all       + the backward kernels and the AdamW kernel: what users get
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerSimdKernels, unregisterSimdKernels } from '../src/backend/wasm_simd';

/** Kernels that issue 11 added or put in front (own kernels, or fast paths). */
export const BACKWARD_KERNELS = [
  'ConvNeXtGeluGrad',
  'ConvNeXtLayerNormGrad',
  'ConvNeXtLinearGrad',
  'DepthwiseConv2dNativeBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'Identity',
  'ConvNeXtAdamW',
];

export type KernelSetName = 'package' | 'forward' | 'all';
export type KernelSet = Map<string, tf.KernelConfig | undefined>;

function snapshot(): KernelSet {
  return new Map(tf.getKernelsForBackend('wasm').map((k) => [k.kernelName, k]));
}

/** The three sets, read off the registry (call after the wasm backend is initialised). Leaves 'all' installed. */
export function kernelSets(): Record<KernelSetName, KernelSet> {
  registerSimdKernels();
  const all = snapshot();
  unregisterSimdKernels();
  const pkg = snapshot();
  const forward: KernelSet = new Map(all);
  for (const name of BACKWARD_KERNELS) forward.set(name, pkg.get(name));
  installKernelSet(all);
  return { package: pkg, forward, all };
}

/** Makes `set` the wasm backend's kernels (exactly those). */
export function installKernelSet(set: KernelSet): void {
  for (const k of tf.getKernelsForBackend('wasm')) if (!set.has(k.kernelName)) tf.unregisterKernel(k.kernelName, 'wasm');
  for (const [name, config] of set) {
    if (tf.getKernel(name, 'wasm')) tf.unregisterKernel(name, 'wasm');
    if (config) tf.registerKernel(config);
  }
}
