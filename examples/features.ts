/**
 * Multi-scale features for a detection or segmentation neck: the four stage maps of one image.
 *
 *   node dist/examples/features.js <image> [--model DIR|CHECKPOINT|ZOO_NAME] [--arch convnext_tiny]
 *
 * Without --model, a randomly initialised --arch shows the shapes (no download needed).
 */
import { parseArgs } from 'util';
import * as tf from '@tensorflow/tfjs-core';
import { Predictor, createModel, initBackend } from '../src';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { model: { type: 'string' }, arch: { type: 'string', default: 'convnext_tiny' } },
    allowPositionals: true,
  });
  const { model, arch } = values;
  const image = positionals[0];
  if (!image) throw new Error('usage: features.js <image> [--model M | --arch NAME]');
  await initBackend();
  const predictor = model ? await Predictor.load(model) : new Predictor(createModel(arch));
  const maps = await predictor.features(image);
  predictor.model.featureInfo.forEach((info, i) => {
    console.log(`stage ${info.stage}: NHWC [${maps[i].shape.join(', ')}]  (${info.numChs} channels, stride ${info.reduction})`);
  });
  tf.dispose(maps);
  await predictor.dispose();
}

main().catch((e) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
