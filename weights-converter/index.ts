/**
 * weights-converter: PyTorch checkpoints (official FB/FB2, timm, torchvision, Hugging Face; .pth/.pt/
 * .bin zip or legacy, .safetensors) -> convnext-tfjs model directories. Pure TypeScript.
 *
 *   import { convertCheckpoint } from 'convnext-tfjs/weights-converter';
 *   import { writeModelDir } from 'convnext-tfjs';              // the model directory (src/io/model_dir)
 *   const c = await convertCheckpoint('convnext_tiny_1k_224_ema.pth', { arch: 'convnext_tiny' });
 *   writeModelDir('models/convnext_tiny', c.weights, c.meta, { fp16: false });
 */
export { Converted, ConvertOptions, convertCheckpoint, modelFromConverted } from './convert';
export { CheckpointError, UnsafePickleError } from './errors';
export { ConvertedTensor, LAYOUTS, Layout, RULES, checkArch, detectLayout, inferConfig, remapStateDict, toTfjsLayout } from './layouts';
export { Checkpoint, CheckpointFormat, RawTensor, ReadCheckpointOptions, SourceDType, detectFormat, readCheckpoint, readCheckpointSync } from './read';
export { readSafetensors, writeSafetensors } from './safetensors';
export { EXPORT_EXTENSIONS, ExportOptions, ExportResult, exportModel, exportWeights, hfConfigJson, timmUsesConvMlp } from './export';
export { writeTorchCheckpoint } from './torch_writer';
