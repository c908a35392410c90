/**
 * Evaluation of a classifier on labelled images: the eval transform (no augmentation), batches
 * pipelined over the inference runner, top-1/top-5, mean loss and the confusion matrix.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RgbImage } from '../data/image';
import { evalTransform } from '../data/transforms';
import { createRunner, pipeline, resolveWorkers } from '../inference/runner';
import { ConvNeXt } from '../model/convnext';
import { PreprocessingInfo, evalPreprocessing } from '../model/preprocessing';
import { Sample, batches } from './dataset';
import { smoothOneHot, softCrossEntropy } from './loss';
import { EvalMetrics, MetricsAccumulator } from './metrics';

export interface EvaluateOptions {
  imageSize: number;
  batchSize: number;
  /** Default: the eval rule for imageSize (src/model/preprocessing). */
  preprocessing?: PreprocessingInfo;
  onSkip?: (file: string, e: Error) => void;
  /** Worker threads with replicas of the model (see Predictor's `workers`); default 1: this thread. */
  workers?: number | 'auto';
}

/** Top-1/top-5, loss and confusion matrix of `model` on labelled images (eval transform, no augmentation). */
export async function evaluate(model: ConvNeXt, samples: Sample[], numClasses: number, o: EvaluateOptions): Promise<EvalMetrics> {
  const pre = o.preprocessing ?? evalPreprocessing(o.imageSize);
  const acc = new MetricsAccumulator(numClasses);
  const runner = await createRunner(model, resolveWorkers(o.workers ?? 1, samples.length, o.batchSize));
  try {
    const it = batches(samples, {
      batchSize: o.batchSize,
      size: pre.inputSize,
      transform: (img: RgbImage) => evalTransform(img, pre).data,
      shuffle: false,
      seed: 'eval',
      onSkip: o.onSkip,
    })[Symbol.asyncIterator]();
    await pipeline(
      runner.concurrency,
      async () => {
        const r = await it.next();
        return r.done ? undefined : r.value;
      },
      (b) => runner.run('logits', b.x, b.shape),
      async (b, logits) => {
        const l = tf.tidy(() => softCrossEntropy(tf.tensor2d(logits, [b.labels.length, numClasses]), smoothOneHot(b.labels, numClasses, 0)));
        const loss = (await l.data())[0]; // async: webgpu has no synchronous read in Node
        l.dispose();
        acc.add(logits, b.labels, loss);
      },
    );
  } finally {
    await runner.dispose();
  }
  return acc.result();
}
