/**
 * convnext-tfjs in the browser (the `browser` export condition: dist/browser/convnext-tfjs.js, an ES
 * module built by scripts/build-browser.js). The model, its layers and blocks, the Pillow-exact
 * preprocessing and the checkpoint converter are the Node library's own code; what differs is here:
 * backend selection (webgpu > webgl > wasm > cpu), images decoded by the browser, models fetched by
 * URL with progress, checkpoints converted from a File/ArrayBuffer in the page.
 *
 *   import { initBackend, BrowserPredictor } from 'convnext-tfjs';
 *   await initBackend();
 *   const p = await BrowserPredictor.load('https://host/models/convnext_tiny/', { onProgress });
 *   const top5 = await p.classify(document.querySelector('img')!);
 *
 * Layout: NHWC inside (inputs [N, H, W, 3], every feature map NHWC); the converter takes PyTorch's
 * NCHW/OIHW tensors and lays them out for TF.js, as in Node.
 */
// What the Node build gets from the @tensorflow/tfjs umbrella, without its layers/converter/data:
// tensor methods (x.reshape(), ...) and every op's gradient (training runs in a page too).
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
export * from '../errors';
export * from '../model';
// createModel builds architectures here; weights come from loadBrowserModel (URL, File, ArrayBuffer).
export { BuildModelOptions as CreateModelOptions, buildModel as createModel } from '../factory/build';
export * from '../blocks';
export * as layers from '../layers';
export * from '../data/portable';
export { ImageError } from '../errors';
export { IMAGENET_MEAN, IMAGENET_STD } from '../model/preprocessing';
// The browser variant itself (not '../data/decode'), so that the declared types are the browser's.
export { DecodeOptions, decodeImage } from '../data/decode.browser';
export { imagenet1kLabels, resolveLabels } from '../inference/labels';
export { LoadedModel, parseMeta } from '../io/model_dir';
export { ModelFormatError } from '../errors';
export { ModelMeta, SourceInfo } from '../model/meta';
export { PreprocessingInfo } from '../model/preprocessing';
export { registerSimdKernels, simdKernelsFor, unregisterSimdKernels } from '../backend/wasm_simd';
export { fusedKernels } from '../backend/wasm_simd/kernels';
export { Converted, ConvertOptions, modelFromConverted } from '../../weights-converter/convert';
export { CheckpointError, UnsafePickleError } from '../../weights-converter/errors';
export { BROWSER_BACKENDS, BackendInfo, BrowserBackend, BrowserBackendOptions, BrowserBackendRequest, browserWasmThreads, initBackend } from './backend';
export { BrowserConvertOptions, CheckpointInput, convertCheckpointBytes, inflateRaw } from './convert';
export { BrowserImageInput, bitmapToRgb, decodeBrowserImage, rgbaToRgb } from '../data/bitmap.browser';
export { LoadProgress, ProgressCallback, UrlLoadOptions, loadModelFromUrl, modelJsonUrl } from './load';
export { BrowserPredictor, BrowserPredictorOptions, ModelSource, Prediction, isCheckpointUrl, loadBrowserModel, topk } from './predictor';
export * as tf from '@tensorflow/tfjs-core';
