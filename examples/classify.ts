/**
 * Classify images with a pretrained ConvNeXt.
 *
 *   node dist/examples/classify.js <image>... [--model convnext_tiny.fb_in1k]
 *
 * --model takes a zoo name (downloaded and converted on first use), a converted model directory or
 * URL, or a PyTorch checkpoint. (In your own code: import from 'convnext-tfjs'.)
 */
import { Predictor, initBackend } from '../src';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const m = args.indexOf('--model');
  const model = m >= 0 ? args.splice(m, 2)[1] : 'convnext_tiny.fb_in1k';
  if (args.length === 0) throw new Error('usage: classify.js <image>... [--model NAME|DIR|CHECKPOINT]');
  const { backend } = await initBackend();
  const predictor = await Predictor.load(model);
  console.log(`${model} on ${backend}: ${predictor.model.config.name}, ${predictor.labels.length} classes`);
  const results = await predictor.classify(args, { topk: 3 });
  results.forEach((top, i) => {
    console.log(args[i]);
    for (const p of top) console.log(`  ${(p.prob * 100).toFixed(1).padStart(5)}%  ${p.label}`);
  });
  await predictor.dispose();
}

main().catch((e) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
