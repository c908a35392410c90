/**
 * A tiny app using convnext-tfjs from outside, as published (scripts/check-consumer.js packs the
 * package, installs the tarball beside this file, compiles it with tsc --strict and no
 * skipLibCheck, and runs it). Uses the root API, a namespace's type, the re-exported `tf` (a gradient
 * included) and the converter entry.
 */
import { ConvNeXtError, ImageError, Predictor, createModel, initBackend, listModels, tf } from 'convnext-tfjs';
import type { Prediction, TrainOptions, data } from 'convnext-tfjs';
import { convertCheckpoint } from 'convnext-tfjs/weights-converter';

async function main(): Promise<void> {
  await initBackend({ backend: 'cpu' });
  const model = createModel({ version: 2, depths: [1, 1, 1, 1], dims: [8, 16, 32, 64], numClasses: 3 });
  const x = tf.randomNormal([1, 32, 32, 3]) as tf.Tensor4D;
  const logits = model.forward(x);
  const p = new Predictor(model, {}, { labels: ['a', 'b', 'c'], preprocessing: { inputSize: 32 } });
  const top: Prediction[][] = await p.classifyTensor(x, { topk: 2 });
  const opts: data.DecodeOptions = { maxImagePixels: 1_000_000 }; // a namespace's type, as a consumer writes it
  const partial: Partial<TrainOptions> = { epochs: 1 };
  // A gradient: tfjs-core's registrations, which the package supplies itself (it depends on
  // tfjs-core, not the @tensorflow/tfjs umbrella that used to register them).
  const v = tf.tensor1d([1, 2]);
  const grad = tf.tidy(() =>
    Array.from(
      tf
        .grad((t: tf.Tensor) => tf.sum(tf.square(t)))(v)
        .dataSync(),
    ),
  );
  const ok = logits.shape.join(',') === '1,3' && top[0].length === 2 && listModels('convnext_*').length > 0 && grad.join(',') === '2,4';
  process.stdout.write(
    JSON.stringify({
      ok,
      shape: logits.shape,
      top: top[0].map((t) => t.label),
      opts,
      partial,
      grad,
      errors: [ConvNeXtError.name, ImageError.name],
      convert: typeof convertCheckpoint,
    }) + '\n',
  );
  tf.dispose([x, logits, v]);
  await p.dispose();
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
