/**
 * Multi-scale features for a detection or segmentation neck: the four stage maps of one image.
 *
 *   node dist/examples/features.js <image> [--model DIR|CHECKPOINT|ZOO_NAME] [--arch convnext_tiny]
 *
 * Without --model, a randomly initialised --arch shows the shapes (no download needed).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Predictor, createModel, initBackend } from '../src';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args.splice(i, 2)[1] : undefined;
  };
  const model = flag('--model');
  const arch = flag('--arch') ?? 'convnext_tiny';
  const image = args[0];
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
