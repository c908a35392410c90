/**
 * `convnext train --data <dir> [--val <dir> | --val-split F] --arch <name> [--init M] --epochs N
 *  --image-size S --batch-size B --lr LR --out <dir> [--resume]` and
 * `convnext eval --model M --data <dir> [--image-size S] [--json]`.
 */
import { Command, InvalidArgumentError } from 'commander';
import { ConvNeXtError } from '../errors';
import { Predictor } from '../inference';
import { scanImageFolder } from '../train/dataset';
import { train } from '../train/trainer';
import { evaluate } from '../train/evaluate';
import { withBackend } from './common';
import { WORKERS_HELP, countOrAuto, positiveInt } from './predict';
import { progressBar } from './progress';

function positiveFloat(v: string): number {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('must be a positive number');
  return n;
}

function fraction(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError('must be in [0, 1)');
  return n;
}

function freezeArg(v: string): 'head' | number {
  if (v === 'head') return 'head';
  const n = Number(v);
  if (!(Number.isInteger(n) && n >= 0 && n <= 4)) throw new InvalidArgumentError("must be 'head' or a number of stages 0-4");
  return n;
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train or fine-tune on an image folder (one subfolder per class)')
    .requiredOption('--data <dir>', 'training images: <dir>/<class>/*.jpg')
    .option('--val <dir>', 'validation images with the same class folders')
    .option('--val-split <f>', 'hold out this fraction of --data for validation (seeded)', fraction)
    .requiredOption('--arch <name>', 'architecture, e.g. convnext_atto, convnextv2_nano')
    .option('--init <model>', 'initial weights: zoo name, converted dir, or PyTorch checkpoint (default: seeded random init)')
    .requiredOption('--epochs <n>', 'epochs', positiveInt)
    .requiredOption('--image-size <n>', 'training resolution', positiveInt)
    .requiredOption('--batch-size <n>', 'images per step', positiveInt)
    .requiredOption('--lr <lr>', 'peak learning rate', positiveFloat)
    .requiredOption('--out <dir>', 'output: checkpoint.safetensors, log.jsonl, report.json, model/')
    .option('--resume', 'continue from <out>/checkpoint.safetensors')
    .option('--min-lr <lr>', 'final learning rate of the cosine schedule', positiveFloat, 1e-6)
    .option('--warmup-epochs <n>', 'linear warmup epochs', Number, 0)
    .option('--weight-decay <wd>', 'AdamW decoupled weight decay (not on norms, biases, layer scale, GRN)', Number, 0.05)
    .option('--layer-decay <f>', 'layer-wise lr decay (e.g. 0.8 for fine-tuning; 1 = off)', Number, 1)
    .option('--smoothing <f>', 'label smoothing', Number, 0.1)
    .option('--drop-path <f>', 'stochastic depth rate of the last block', Number, 0.1)
    .option('--ema <decay>', 'keep an EMA of the weights with this decay (e.g. 0.999)', Number)
    .option('--accum <n>', 'gradient accumulation steps', positiveInt, 1)
    .option('--freeze <what>', "'head' (train the head only) or N (freeze the stem and the first N stages)", freezeArg)
    .option('--mixup <alpha>', 'mixup alpha (0 = off)', Number, 0)
    .option('--cutmix <alpha>', 'cutmix alpha (0 = off)', Number, 0)
    .option('--no-trivial-augment', 'disable TrivialAugmentWide')
    .option('--seed <n>', 'seed', Number, 0)
    .option('--json', 'print the final report as one JSON object')
    .action(async (o) => {
      const info = await withBackend(program);
      let bar: ReturnType<typeof progressBar> | null = null;
      const report = await train({
        data: o.data,
        val: o.val,
        valSplit: o.valSplit,
        arch: o.arch,
        init: o.init,
        epochs: o.epochs,
        imageSize: o.imageSize,
        batchSize: o.batchSize,
        lr: o.lr,
        out: o.out,
        resume: o.resume,
        minLr: o.minLr,
        warmupEpochs: o.warmupEpochs,
        weightDecay: o.weightDecay,
        layerDecay: o.layerDecay,
        labelSmoothing: o.smoothing,
        dropPathRate: o.dropPath,
        emaDecay: o.ema,
        accumSteps: o.accum,
        freeze: o.freeze,
        mixup: o.mixup,
        cutmix: o.cutmix,
        trivialAugment: o.trivialAugment,
        seed: o.seed,
        onEvent: (e) => {
          if (e.type === 'start') {
            process.stderr.write(
              `training ${o.arch} on ${info.backend}: ${e.trainImages} train / ${e.valImages} val images, ${e.classes.length} classes, ` +
                `${e.trainable.toLocaleString('en-US')} of ${e.params.toLocaleString('en-US')} params trainable` +
                (e.resumedFromEpoch ? `, resuming after epoch ${e.resumedFromEpoch}` : '') + '\n',
            );
          } else if (e.type === 'step') {
            if (!bar) bar = progressBar(e.batches, `epoch ${e.epoch}`, 'batch', ' | loss {loss} acc {acc}% | {ips} img/s | lr {lr} | ETA {etaTotal}s');
            bar.update(e.batch, { loss: e.loss.toFixed(4), acc: (100 * e.acc).toFixed(1), ips: e.imagesPerSec.toFixed(1), lr: e.lr.toExponential(2), etaTotal: Math.round(e.etaSec) });
          } else if (e.type === 'skip') {
            process.stderr.write(`skipped ${e.file}: ${e.reason}\n`);
          } else if (e.type === 'epoch') {
            bar?.stop();
            bar = null;
            const r = e.record;
            process.stderr.write(
              `epoch ${r.epoch}: loss ${r.train_loss.toFixed(4)} acc ${(100 * r.train_acc).toFixed(1)}% | val top1 ${(100 * r.val_top1).toFixed(2)}% top5 ${(100 * r.val_top5).toFixed(2)}%` +
                (r.ema_val_top1 !== undefined ? ` (EMA ${(100 * r.ema_val_top1).toFixed(2)}%)` : '') +
                ` | ${r.images_per_s.toFixed(1)} img/s, ${r.seconds.toFixed(1)} s\n`,
            );
          }
        },
      });
      if (o.json) process.stdout.write(JSON.stringify({ top1: report.final.top1, top5: report.final.top5, n: report.final.n, model: report.modelDir, seconds: report.seconds, ema_top1: report.ema?.top1 }) + '\n');
      else process.stdout.write(`final val top-1 ${(100 * report.final.top1).toFixed(2)}% top-5 ${(100 * report.final.top5).toFixed(2)}% on ${report.final.n} images; model in ${report.modelDir}\n`);
    });

  program
    .command('eval')
    .description('top-1/top-5 accuracy of a model on an image folder (class folders named as the model labels, or in label order)')
    .requiredOption('--model <model>', 'converted dir, zoo name or checkpoint')
    .requiredOption('--data <dir>', 'images: <dir>/<class>/*.jpg')
    .option('--image-size <n>', 'eval resolution (default: the model\'s)', positiveInt)
    .option('--batch <n>', 'images per forward pass', positiveInt, 16)
    .option('--workers <n>', WORKERS_HELP, countOrAuto, 'auto' as const)
    .option('--json', 'one JSON object: top1, top5, n, loss, classes, confusion')
    .action(async (o: { model: string; data: string; imageSize?: number; batch: number; workers: number | 'auto'; json?: boolean }) => {
      await withBackend(program);
      const p = await Predictor.load(o.model, { preprocessing: o.imageSize ? { inputSize: o.imageSize } : undefined });
      try {
        const folders = scanImageFolder(o.data);
        // Map folder names to the model's label indices when they match; else folder order.
        const byName = folders.classes.every((c) => p.labels.includes(c));
        const classes = byName ? p.labels : folders.classes;
        if (!byName && folders.classes.length !== p.model.numClasses) {
          throw new ConvNeXtError(`eval: ${folders.classes.length} class folders in ${o.data} but the model has ${p.model.numClasses} classes, and the folder names are not its labels`);
        }
        const samples = folders.samples.map((s) => ({ file: s.file, label: byName ? p.labels.indexOf(folders.classes[s.label]) : s.label }));
        const m = await evaluate(p.model, samples, p.model.numClasses, { imageSize: p.preprocessing.inputSize, batchSize: o.batch, workers: o.workers, preprocessing: p.preprocessing, onSkip: (f, e) => process.stderr.write(`skipped ${f}: ${e.message}\n`) });
        // The matrix is indexed like the model's labels (by name) or the folders (by order): `classes` says which.
        if (o.json) process.stdout.write(JSON.stringify({ top1: m.top1, top5: m.top5, n: m.n, loss: m.loss, classes, confusion: m.confusion }) + '\n');
        else process.stdout.write(`top-1 ${(100 * m.top1).toFixed(2)}%  top-5 ${(100 * m.top5).toFixed(2)}%  on ${m.n} images (loss ${m.loss.toFixed(4)})\n`);
      } finally {
        await p.dispose();
      }
    });
}
