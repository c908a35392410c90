/**
 * `convnext pretrain --data <images> --arch convnextv2_atto [...] --out run` (FCMAE self-supervised
 * pretraining, src/fcmae/pretrain.ts): progress on stderr, a summary (or --json) on stdout.
 */
import { Command, InvalidArgumentError } from 'commander';
import { pretrain } from '../fcmae/pretrain';
import { withBackend } from './common';
import { CHUNK_SIZE_HELP, TRAIN_WORKERS_HELP, chunkSizeArg, countOrAuto, positiveInt, withFlagNames } from './options';
import { progressBar } from './progress';

/** PretrainOptions names -> this command's flags, for OutOfMemoryError. */
const PRETRAIN_FLAGS = { chunkSize: '--chunk-size', batchSize: '--batch-size', accum: '--accum', workers: '--workers' };

function positiveFloat(v: string): number {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('must be a positive number');
  return n;
}

function nonNegative(v: string): number {
  const n = Number(v);
  if (!(n >= 0) || !Number.isFinite(n)) throw new InvalidArgumentError('must be a number >= 0');
  return n;
}

function ratio(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError('must be in [0, 1)');
  return n;
}

export function grnStatsArg(v: string): 'image' | 'batch' {
  if (v !== 'image' && v !== 'batch') throw new InvalidArgumentError("must be 'image' (per image, the JAX recipe) or 'batch' (pooled, PyTorch MinkowskiGRN)");
  return v;
}

export function registerPretrain(program: Command): void {
  program
    .command('pretrain')
    .description('FCMAE self-supervised pretraining of a ConvNeXt V2 encoder on a folder of images (labels ignored)')
    .requiredOption('--data <dir>', 'images, searched recursively')
    .option('--arch <name>', 'ConvNeXt V2 architecture', 'convnextv2_atto')
    .option('--image-size <n>', 'input side, divisible by 32', positiveInt, 224)
    .option('--mask-ratio <f>', 'fraction of 32x32 patches masked', ratio, 0.6)
    .option('--decoder-dim <n>', 'decoder width', positiveInt, 512)
    .option('--decoder-depth <n>', 'decoder ConvNeXt V2 blocks', positiveInt, 1)
    .option('--grn-stats <mode>', "encoder GRN statistics over visible sites: 'image' or 'batch'", grnStatsArg, 'image' as const)
    .option('--epochs <n>', 'epochs', positiveInt, 800)
    .option('--batch-size <n>', 'images per micro-batch', positiveInt, 64)
    .option('--blr <lr>', 'base learning rate: lr = blr x batch-size x accum / 256', positiveFloat, 1.5e-4)
    .option('--min-lr <lr>', 'final learning rate of the cosine', nonNegative, 0)
    .option('--warmup-epochs <n>', 'linear warmup epochs (clamped to the run)', nonNegative, 40)
    .option('--weight-decay <wd>', 'AdamW weight decay (not on biases and norms; GRN and mask token decayed)', nonNegative, 0.05)
    .option('--accum <n>', 'micro-batches per optimizer step', positiveInt, 1)
    .option('--repeats <n>', 'crops of each image per epoch (small data sets)', positiveInt, 1)
    .option('--reconstruct-every <n>', 'a reconstruction grid every N epochs (0 = never)', Number, 1)
    .option('--init <how>', "'official' (FB2 fcmae.py, std 1) or 'convnext' (std 0.02)", 'official')
    .option('--seed <n>', 'seed', Number, 0)
    .option('--workers <n>', `${TRAIN_WORKERS_HELP} (grn-stats batch: 1)`, countOrAuto, 'auto' as const)
    .option('--chunk-size <n>', `${CHUNK_SIZE_HELP} (grn-stats batch: no chunks)`, chunkSizeArg, 'auto' as const)
    .option('--out <dir>', 'output: checkpoint.safetensors, log.jsonl, reconstruction-eNNN.png, encoder/, fcmae.pth', 'run')
    .option('--resume', 'continue from <out>/checkpoint.safetensors')
    .option('--json', 'print the result as one JSON object')
    .action(async (o) => {
      if (o.init !== 'official' && o.init !== 'convnext') throw new InvalidArgumentError(`--init must be official or convnext, got ${o.init}`);
      const info = await withBackend(program);
      let bar: ReturnType<typeof progressBar> | null = null;
      const r = await pretrain({
        data: o.data,
        arch: o.arch,
        out: o.out,
        epochs: o.epochs,
        batchSize: o.batchSize,
        imageSize: o.imageSize,
        maskRatio: o.maskRatio,
        decoderDim: o.decoderDim,
        decoderDepth: o.decoderDepth,
        grnStats: o.grnStats,
        blr: o.blr,
        minLr: o.minLr,
        warmupEpochs: o.warmupEpochs,
        weightDecay: o.weightDecay,
        accum: o.accum,
        repeats: o.repeats,
        reconstructEvery: o.reconstructEvery,
        init: o.init,
        seed: o.seed,
        workers: o.workers,
        chunkSize: o.chunkSize,
        resume: o.resume,
        onEvent: (e) => {
          if (e.type === 'start') {
            process.stderr.write(
              `pretraining ${o.arch} (FCMAE) on ${info.backend}${e.workers > 1 ? ` x ${e.workers} workers` : ''}: ${e.images} images, ${e.stepsPerEpoch} steps/epoch, ${e.params.toLocaleString('en-US')} params, lr ${e.lr.toExponential(2)}` +
                (e.resumedFromEpoch ? `, resuming after epoch ${e.resumedFromEpoch}` : '') +
                '\n',
            );
          } else if (e.type === 'step') {
            if (!bar) bar = progressBar(e.batches, `epoch ${e.epoch}`, 'batch', ' | loss {loss} | {ips} img/s | lr {lr}');
            bar.update(e.batch, { loss: e.loss.toFixed(4), ips: e.imagesPerSec.toFixed(1), lr: e.lr.toExponential(2) });
          } else if (e.type === 'skip') process.stderr.write(`skipped ${e.file}: ${e.reason}\n`);
          else if (e.type === 'epoch') {
            bar?.stop();
            bar = null;
            process.stderr.write(
              `epoch ${e.record.epoch}: loss ${e.record.loss.toFixed(4)} | lr ${e.record.lr.toExponential(2)} | ${e.record.images_per_s.toFixed(1)} img/s, ${e.record.seconds.toFixed(1)} s\n`,
            );
          } else if (e.type === 'picture') process.stderr.write(`wrote ${e.file}\n`);
        },
      }).catch((e: unknown) => {
        throw withFlagNames(e, PRETRAIN_FLAGS);
      });
      const last = r.history[r.history.length - 1];
      if (o.json)
        process.stdout.write(
          JSON.stringify({
            loss: last?.loss ?? null,
            epochs: r.history.length,
            encoder: r.encoderDir,
            checkpoint: r.checkpoint,
            seconds: r.seconds,
            history: r.history,
          }) + '\n',
        );
      else process.stdout.write(`final loss ${last ? last.loss.toFixed(4) : 'n/a'}; encoder in ${r.encoderDir}, FCMAE checkpoint ${r.checkpoint}\n`);
    });
}
