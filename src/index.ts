/**
 * convnext-tfjs: ConvNeXt V1 and V2 written by hand on TensorFlow.js.
 *
 *   import { initBackend, createModel, loadModel, Predictor } from 'convnext-tfjs';
 *   await initBackend();                                   // tfjs-node(-gpu) > wasm > cpu
 *   const model = createModel('convnext_tiny');            // an architecture, official init
 *   const { model: m } = await loadModel('convnext_tiny.fb_in1k');   // pretrained (zoo tag, dir, URL, checkpoint)
 *   const logits = model.forward(x);                       // x: NHWC [N, 224, 224, 3], normalised
 *
 * The root lists what an application needs; the rest is in namespaces: `models` (configs, feature
 * info, parameter specs), `factory` (the name rule), `inference` (batch runners, labels), `layers`
 * (one op a file), `blocks`, `training` (optimizer, schedule, augmentation, datasets), `zoo`
 * (registry, cache, downloads), `data` (decoding, resize, transforms). The converter is
 * `convnext-tfjs/weights-converter`.
 *
 *   import { tf } from 'convnext-tfjs';                   // tfjs-core, re-exported: no extra dependency
 */
/**
 * TensorFlow.js core, the one engine this package runs on (tensors, ops, memory): use it instead
 * of installing @tensorflow/tfjs-core yourself, e.g. `tf.randomNormal([1, 224, 224, 3])`.
 */
export * as tf from '@tensorflow/tfjs-core';
// Backends
export { BackendInfo, InitBackendOptions, availableBackends, initBackend } from './backend';
// Models: the one way in, and what a model is
export { CreateModelOptions, LoadModelOptions, createModel, loadModel } from './factory';
export { ConvNeXtConfig, listModels } from './model/configs';
export { ConvNeXt } from './model/convnext';
export { ModelMeta } from './model/meta';
export { LoadedModel, writeModelDir } from './io/model_dir';
export { listPretrained } from './zoo/registry';
// Images in, answers out
export { ImageInput, Prediction, Predictor, PredictorOptions, runTolerant } from './inference/predictor';
export { InferencePool } from './parallel/pool';
export { decodeImage } from './data/decode';
export { RgbImage } from './data/image';
export { evalTransform, preprocessFile, toNchw } from './data/transforms';
export { readNpy, writeNpy } from './io/npy';
// Training
export { evaluate } from './train/evaluate';
export { TrainEvent, TrainOptions, TrainReport, train } from './train/trainer';
// Errors (every class: src/errors.ts)
export * from './errors';
// Namespaces: the building blocks and the rest of each room's API
export * as models from './model'; // configs, preprocessing rule and mean/std, metadata, parameter specs
export * as factory from './factory';
export * as inference from './inference';
export * as layers from './layers';
export * as blocks from './blocks';
export * as training from './train';
export * as zoo from './zoo';
export * as data from './data';
export * as fcmae from './fcmae';
