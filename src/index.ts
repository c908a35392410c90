/**
 * convnext-tfjs: ConvNeXt V1 and V2 written by hand on TensorFlow.js.
 *
 *   import { initBackend, createModel } from 'convnext-tfjs';
 *   await initBackend();                                   // tfjs-node(-gpu) > wasm > cpu
 *   const model = createModel('convnext_tiny');
 *   const logits = model.forward(x);                       // x: NHWC [N, 224, 224, 3], normalised
 *
 *   import { tf } from 'convnext-tfjs';                   // tfjs-core, re-exported: no extra dependency
 */
/**
 * TensorFlow.js core, the one engine this package runs on (tensors, ops, memory): use it instead
 * of installing @tensorflow/tfjs-core yourself, e.g. `tf.randomNormal([1, 224, 224, 3])`.
 */
export * as tf from '@tensorflow/tfjs-core';
export * from './errors';
export * from './model';
export * from './blocks';
export * as layers from './layers';
export { registerWasmTrainingKernels } from './backend/wasm_gradients';
export * from './train';
export { BackendInfo, BackendRequest, InitBackendOptions, ModuleLoader, availableBackends, initBackend } from './backend';
export * from './inference';
export * from './data';
export * from './zoo';
export { LoadModelOptions, loadModel } from './factory/load';
export { LoadedModel, ModelFormatError, loadConvertedModel } from './io/model_dir';
export { ModelMeta, SourceInfo } from './model/meta';
export { PreprocessingInfo } from './model/preprocessing';
export { NpyError, readNpy, readNpyFloat32, writeNpy } from './io/npy';
export { checkOutputFile } from './io/output';
export * from './parallel';
export { BenchOptions, BenchResult, machineInfo, runBenchmark } from './perf/benchmark';
