/**
 * One entry point for every model source a user has:
 *   - a zoo name (convnext_tiny.fb_in1k): downloaded, converted and cached on first use (src/zoo);
 *   - a converted model directory, its model.json, or an http(s) URL to one;
 *   - a PyTorch checkpoint (.pth/.pt/.bin/.safetensors), converted in memory.
 */
import * as fs from 'fs';
import { ConvNeXtError } from '../errors';
import { convertCheckpoint, ConvertOptions, modelFromConverted } from '../../weights-converter/convert';
import { ResolveOptions, isZooName, resolvePretrained } from '../zoo';
import { LoadedModel, isConvertedModel, loadConvertedModel } from '../io/model_dir';

export type LoadModelOptions = ConvertOptions & ResolveOptions;

/**
 *   const { model, meta } = await loadModel('convnext_tiny.fb_in1k');            // zoo
 *   const { model, meta } = await loadModel('models/convnext_tiny');            // converted dir
 *   const { model } = await loadModel('convnext_tiny_1k_224_ema.pth');          // checkpoint
 */
export async function loadModel(source: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  if (isZooName(source)) return loadConvertedModel((await resolvePretrained(source, opts)).dir);
  if (isConvertedModel(source)) return loadConvertedModel(source);
  if (!fs.existsSync(source)) throw new ConvNeXtError(`model ${source}: no such file or directory`);
  if (fs.statSync(source).isDirectory()) {
    throw new ConvNeXtError(`model ${source}: directory has no model.json (convert a checkpoint with \`convnext convert\`)`);
  }
  const c = await convertCheckpoint(source, opts);
  return { model: modelFromConverted(c), meta: { formatVersion: 1, storage: 'float32', ...c.meta } };
}
