/**
 * convnext-tfjs: ConvNeXt V1 and V2 written by hand on TensorFlow.js.
 *
 *   import { initBackend, createModel } from 'convnext-tfjs';
 *   await initBackend();                                   // tfjs-node(-gpu) > wasm > cpu
 *   const model = createModel('convnext_tiny');
 *   const logits = model.forward(x);                       // x: NHWC [N, 224, 224, 3], normalised
 */
export * from './errors';
export * from './model';
export * from './blocks';
export * as layers from './layers';
export { registerWasmTrainingKernels } from './backend/wasm_kernels';
export * from './train';
export * from './fcmae';
export { BackendInfo, BackendRequest, InitBackendOptions, ModuleLoader, availableBackends, initBackend } from './backend';
export * from './inference';
export * from './data';
export * from './zoo';
export { LoadModelOptions, loadModel } from './io/load';
export { LoadedModel, ModelFormatError, ModelMeta, PreprocessingInfo, SourceInfo, loadConvertedModel } from './io/model_dir';
export { NpyError, readNpy, readNpyFloat32, writeNpy } from './io/npy';
export * from './parallel';
export { BenchOptions, BenchResult, machineInfo, runBenchmark } from './bench/bench';
