/**
 * `convnext train --data <dir> [--val <dir> | --val-split F] --arch <name> [--init M] --epochs N
 *  --image-size S --batch-size B --lr LR --out <dir> [--resume] [--aa none|trivial|rand-...] [--scale MIN MAX]
 *  [--ratio MIN MAX]` (timm train.py's names and defaults) and
 * `convnext eval --model M --data <dir> [--image-size S] [--json]`.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { ConvNeXtError, TrainOptionError } from '../errors';
import { DEFAULT_BATCH_SIZE, Predictor } from '../inference';
import { scanImageFolder } from '../train/dataset';
import { TRAIN_DEFAULTS as D, defaultRunDir, validateTrainOptions, withTrainDefaults } from '../train/options';
import { AUTO_AUGMENT_FORMS } from '../train/rand_augment';
import { TrainOptions, train } from '../train/trainer';
import { evaluate } from '../train/evaluate';
import { withBackend } from './common';
import { SkippedEntry } from '../util/fs';
import { reportSkipped } from './predict';
import {
  CHUNK_SIZE_HELP,
  TRAIN_WORKERS_HELP,
  WORKERS_HELP,
  chunkSizeArg,
  countOrAuto,
  fraction,
  imageSizeArg,
  positiveFloat,
  positiveInt,
  withFlagNames,
} from './options';
import { progressBar } from './progress';

/** TrainOptions names -> this command's flags, for the library's validation messages. */
const TRAIN_FLAGS: Record<string, string> = {
  data: '--data <dir>',
  arch: '--arch <name>',
  epochs: '--epochs <n>',
  imageSize: '--image-size',
  batchSize: '--batch-size',
  lr: '--lr',
  out: '--out',
  minLr: '--min-lr',
  warmupEpochs: '--warmup-epochs',
  weightDecay: '--weight-decay',
  layerDecay: '--layer-decay',
  labelSmoothing: '--smoothing',
  dropPathRate: '--drop-path',
  emaDecay: '--ema',
  accumSteps: '--accum',
  mixup: '--mixup',
  cutmix: '--cutmix',
  valSplit: '--val-split',
  seed: '--seed',
  freeze: '--freeze',
  autoAugment: '--aa',
  scale: '--scale',
  ratio: '--ratio',
  workers: '--workers',
  chunkSize: '--chunk-size',
};

/** The library's TrainOptionError in the CLI's words: the option name becomes its flag. */
function asFlagError(e: unknown): unknown {
  if (!(e instanceof TrainOptionError)) return withFlagNames(e, Object.fromEntries(Object.entries(TRAIN_FLAGS).map(([k, f]) => [k, f.split(' ')[0]])));
  const flag = TRAIN_FLAGS[e.option]?.split(' ')[0];
  return flag && e.message.startsWith(e.option) ? new ConvNeXtError(flag + e.message.slice(e.option.length)) : e;
}

/** "67.50%"; 'n/a' for NaN (nothing measured). */
function pct(v: number): string {
  return Number.isFinite(v) ? `${(100 * v).toFixed(2)}%` : 'n/a';
}

function freezeArg(v: string): 'head' | number {
  if (v === 'head') return 'head';
  const n = Number(v);
  if (!(Number.isInteger(n) && n >= 0 && n <= 4)) throw new InvalidArgumentError("must be 'head' or a number of stages 0-4");
  return n;
}

/** One number of a two-number flag (--scale MIN MAX), collected in order. */
function numberList(v: string, previous?: number[]): number[] {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('must be two numbers, MIN MAX');
  return [...(previous ?? []), n];
}

/** --scale / --ratio: exactly two numbers, or absent (the library's default). */
export function pairFlag(flag: string, v: number[] | undefined): [number, number] | undefined {
  if (v === undefined) return undefined;
  if (v.length !== 2) throw new ConvNeXtError(`${flag} takes two numbers, MIN MAX; got ${v.length}: ${v.join(' ')}`);
  return [v[0], v[1]];
}

/** --aa, with --no-trivial-augment kept as an alias of --aa none (commander sets trivialAugment false for it). */
export function autoAugmentFlag(o: { aa?: string; trivialAugment?: boolean }): string | undefined {
  if (o.trivialAugment !== false) return o.aa;
  if (o.aa !== undefined && o.aa !== 'none') throw new ConvNeXtError(`--no-trivial-augment means --aa none; it contradicts --aa ${o.aa}`);
  return 'none';
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train or fine-tune on an image folder (one subfolder per class)')
    .option('--data <dir>', 'training images: <dir>/<class>/*.jpg (required)')
    .option('--val <dir>', 'validation images with the same class folders')
    .option('--val-split <f>', 'hold out this fraction of --data for validation (seeded)', fraction)
    .option('--arch <name>', 'architecture, e.g. convnext_atto, convnextv2_nano (required; `convnext models` lists them)')
    .option('--init <model>', 'initial weights: zoo name, converted dir, or PyTorch checkpoint (default: seeded random init)')
    .option('--epochs <n>', 'epochs (required)', positiveInt)
    .option('--image-size <n>', 'training resolution, 32-2048', imageSizeArg, D.imageSize)
    .option('--batch-size <n>', 'images per step', positiveInt, D.batchSize)
    .addOption(
      new Option('--lr <lr>', 'peak learning rate')
        .argParser(positiveFloat)
        .default('recipe', 'the ConvNeXt recipe scaled to the batch: 4e-3 x batch/4096, with --init 5e-5 x batch/512'),
    )
    .addOption(new Option('--out <dir>', 'output: checkpoint.safetensors, log.jsonl, report.json, model/').default(defaultRunDir(), 'runs/<UTC timestamp>'))
    .option('--resume', 'continue from <out>/checkpoint.safetensors')
    .option('--min-lr <lr>', 'final learning rate of the cosine schedule', positiveFloat, D.minLr)
    .option('--warmup-epochs <n>', 'linear warmup epochs', Number, D.warmupEpochs)
    .option('--weight-decay <wd>', 'AdamW decoupled weight decay (not on norms, biases, layer scale, GRN)', Number, D.weightDecay)
    .option('--layer-decay <f>', 'layer-wise lr decay (e.g. 0.8 for fine-tuning; 1 = off)', Number, D.layerDecay)
    .option('--smoothing <f>', 'label smoothing', Number, D.labelSmoothing)
    .option('--drop-path <f>', 'stochastic depth rate of the last block', Number, D.dropPathRate)
    .option('--ema <decay>', 'keep an EMA of the weights with this decay (e.g. 0.999)', Number)
    .option('--accum <n>', 'gradient accumulation steps', positiveInt, D.accumSteps)
    .option('--freeze <what>', "'head' (train the head only) or N (freeze the stem and the first N stages)", freezeArg)
    .option('--mixup <alpha>', 'mixup alpha (0 = off)', Number, D.mixup)
    .option('--cutmix <alpha>', 'cutmix alpha (0 = off)', Number, D.cutmix)
    .option('--aa <policy>', `automatic augmentation, as timm's --aa: ${AUTO_AUGMENT_FORMS} (default: ${D.autoAugment})`)
    .option('--no-trivial-augment', 'the same as --aa none (kept for old scripts)')
    .option('--scale <range...>', `RandomResizedCrop area fraction range, two numbers MIN MAX in (0, 1] (default: ${D.scale.join(' ')})`, numberList)
    .option(
      '--ratio <range...>',
      `RandomResizedCrop aspect ratio range, two numbers MIN MAX (default: ${D.ratio.map((r) => +r.toFixed(4)).join(' ')})`,
      numberList,
    )
    .option('--seed <n>', 'seed', Number, D.seed)
    .option('--workers <n>', TRAIN_WORKERS_HELP, countOrAuto, 'auto' as const)
    .option('--chunk-size <n>', CHUNK_SIZE_HELP, chunkSizeArg, 'auto' as const)
    .option('--json', 'print the final report as one JSON object')
    .action(async (o) => {
      const missing = (['data', 'arch', 'epochs'] as const).filter((k) => o[k] === undefined);
      if (missing.length)
        throw new ConvNeXtError(
          `missing required option${missing.length > 1 ? 's' : ''}: ${missing.map((k) => TRAIN_FLAGS[k]).join(', ')} (convnext train --help shows every option with its default)`,
        );
      const opts: TrainOptions = withTrainDefaults({
        data: o.data,
        val: o.val,
        valSplit: o.valSplit,
        arch: o.arch,
        init: o.init,
        epochs: o.epochs,
        imageSize: o.imageSize,
        batchSize: o.batchSize,
        lr: o.lr === 'recipe' ? undefined : o.lr,
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
        autoAugment: autoAugmentFlag(o),
        scale: pairFlag('--scale', o.scale),
        ratio: pairFlag('--ratio', o.ratio),
        seed: o.seed,
        workers: o.workers,
        chunkSize: o.chunkSize,
      });
      try {
        validateTrainOptions(opts);
      } catch (e) {
        throw asFlagError(e);
      }
      const info = await withBackend(program);
      let bar: ReturnType<typeof progressBar> | null = null;
      const report = await train({
        ...opts,
        onEvent: (e) => {
          if (e.type === 'start') {
            process.stderr.write(
              `training ${o.arch} on ${info.backend}${e.workers > 1 ? ` x ${e.workers} workers` : ''} into ${opts.out} (batch ${opts.batchSize}, lr ${opts.lr.toExponential(3)}, size ${opts.imageSize}): ` +
                `${e.trainImages} train / ${e.valImages ? `${e.valImages} val images` : 'no validation set'}, ${e.classes.length} classes, ` +
                `${e.trainable.toLocaleString('en-US')} of ${e.params.toLocaleString('en-US')} params trainable` +
                (e.resumedFromEpoch ? `, resuming after epoch ${e.resumedFromEpoch}` : '') +
                '\n',
            );
          } else if (e.type === 'step') {
            if (!bar) bar = progressBar(e.batches, `epoch ${e.epoch}`, 'batch', ' | loss {loss} acc {acc}% | {ips} img/s | lr {lr} | ETA {etaTotal}s');
            bar.update(e.batch, {
              loss: e.loss.toFixed(4),
              acc: (100 * e.acc).toFixed(1),
              ips: e.imagesPerSec.toFixed(1),
              lr: e.lr.toExponential(2),
              etaTotal: Math.round(e.etaSec),
            });
          } else if (e.type === 'skip') {
            process.stderr.write(`skipped ${e.file}: ${e.reason}\n`);
          } else if (e.type === 'epoch') {
            bar?.stop();
            bar = null;
            const r = e.record;
            process.stderr.write(
              `epoch ${r.epoch}: loss ${r.train_loss.toFixed(4)} acc ${(100 * r.train_acc).toFixed(1)}% | ` +
                (Number.isFinite(r.val_top1) ? `val top1 ${pct(r.val_top1)} top5 ${pct(r.val_top5)}` : 'no validation set') +
                (r.ema_val_top1 !== undefined && Number.isFinite(r.ema_val_top1) ? ` (EMA ${pct(r.ema_val_top1)})` : '') +
                ` | ${r.images_per_s.toFixed(1)} img/s, ${r.seconds.toFixed(1)} s\n`,
            );
          }
        },
      }).catch((e: unknown) => {
        throw asFlagError(e);
      });
      if (o.json)
        process.stdout.write(
          JSON.stringify({
            top1: report.final.top1,
            top5: report.final.top5,
            n: report.final.n,
            model: report.modelDir,
            seconds: report.seconds,
            ema_top1: report.ema?.top1,
          }) + '\n',
        );
      else if (report.final.n === 0) process.stdout.write(`no validation set (use --val or --val-split to measure accuracy); model in ${report.modelDir}\n`);
      else
        process.stdout.write(
          `final val top-1 ${pct(report.final.top1)} top-5 ${pct(report.final.top5)} on ${report.final.n} images; model in ${report.modelDir}\n`,
        );
    });

  program
    .command('eval')
    .description('top-1/top-5 accuracy of a model on an image folder (class folders named as the model labels, or in label order)')
    .requiredOption('--model <model>', 'converted dir, zoo name or checkpoint')
    .requiredOption('--data <dir>', 'images: <dir>/<class>/*.jpg')
    .option('--image-size <n>', "eval resolution, 32-2048 (default: the model's)", imageSizeArg)
    .option('--batch-size <n>', 'images per forward pass', positiveInt, DEFAULT_BATCH_SIZE)
    .addOption(new Option('--batch <n>').hideHelp().argParser(positiveInt)) // the old spelling of --batch-size
    .option('--workers <n>', WORKERS_HELP, countOrAuto, 'auto' as const)
    .option('--json', 'one JSON object: top1, top5, n, loss, classes, confusion')
    .action(async (o: { model: string; data: string; imageSize?: number; batchSize: number; batch?: number; workers: number | 'auto'; json?: boolean }) => {
      await withBackend(program);
      const p = await Predictor.load(o.model, { preprocessing: o.imageSize ? { inputSize: o.imageSize } : undefined });
      try {
        const skipped: SkippedEntry[] = [];
        const folders = scanImageFolder(o.data, undefined, (e) => skipped.push(e));
        reportSkipped(skipped);
        // Map folder names to the model's label indices when they match; else folder order.
        const byName = folders.classes.every((c) => p.labels.includes(c));
        const classes = byName ? p.labels : folders.classes;
        if (!byName && folders.classes.length !== p.model.numClasses) {
          throw new ConvNeXtError(
            `eval: ${folders.classes.length} class folders in ${o.data} but the model has ${p.model.numClasses} classes, and the folder names are not its labels`,
          );
        }
        const samples = folders.samples.map((s) => ({ file: s.file, label: byName ? p.labels.indexOf(folders.classes[s.label]) : s.label }));
        const m = await evaluate(p.model, samples, p.model.numClasses, {
          imageSize: p.preprocessing.inputSize,
          batchSize: o.batch ?? o.batchSize,
          workers: o.workers,
          preprocessing: p.preprocessing,
          onSkip: (f, e) => process.stderr.write(`skipped ${f}: ${e.message}\n`),
        });
        // The matrix is indexed like the model's labels (by name) or the folders (by order): `classes` says which.
        if (o.json) process.stdout.write(JSON.stringify({ top1: m.top1, top5: m.top5, n: m.n, loss: m.loss, classes, confusion: m.confusion }) + '\n');
        else process.stdout.write(`top-1 ${(100 * m.top1).toFixed(2)}%  top-5 ${(100 * m.top5).toFixed(2)}%  on ${m.n} images (loss ${m.loss.toFixed(4)})\n`);
      } finally {
        await p.dispose();
      }
    });
}
