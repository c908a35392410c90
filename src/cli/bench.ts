/**
 * `convnext bench --arch <name> [--batch N] [--workers N] [--backend B] [--image-size S] [--reps R] [--json]`:
 * inference speed of one configuration with random weights. With --json, one JSON object (the
 * BenchResult) on the last line of stdout; bench/run.sh collects those.
 * `--train` times full training steps instead (forward, backward, AdamW; src/perf/train_benchmark.ts).
 */
import { Command, InvalidArgumentError } from 'commander';
import * as os from 'os';
import { BenchResult, runBenchmark } from '../perf/benchmark';
import { TrainBenchResult, runTrainBenchmark } from '../perf/train_benchmark';
import { CHUNK_SIZE_HELP, addAlias, chunkSizeArg, countOrAuto, positiveInt, withFlagNames } from './options';
import { ChunkSize } from '../train/data_parallel/chunks';

function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be an integer >= 0');
  return n;
}

interface BenchFlags {
  arch: string;
  batchSize: number;
  train?: boolean;
  workers: number | 'auto';
  chunkSize: ChunkSize;
  threads?: number | 'auto';
  backend?: string;
  imageSize: number;
  reps?: number;
  warmup?: number;
  json?: boolean;
}

/** The human summary of a result. */
export function formatBench(r: BenchResult): string {
  const threads = r.threads === null ? '' : `, ${r.threads} thread${r.threads === 1 ? '' : 's'}${r.workers > 1 ? ' each' : ''}`;
  const who = r.workers > 1 ? `batch ${r.batch} x ${r.workers} workers${threads}` : `batch ${r.batch}${threads}`;
  return [
    `${r.arch}  ${r.backend}  ${who}  ${r.image_size}x${r.image_size}  (${r.gmacs_per_img} GMACs/img)`,
    `  ${r.ms_per_img} ms/img best, ${r.ms_per_img_median} median   ${r.images_per_s} img/s   passes ${r.pass_ms.join(', ')} ms   CPU ${r.cpu_util}x`,
    `  create ${r.create_ms} ms${r.workers > 1 ? `, pool start ${r.pool_ms} ms` : ''}   weights ${r.weights_mb} MB   ` +
      `peak RSS ${r.peak_rss_mb} MB   tensors left ${r.num_tensors}`,
  ].join('\n');
}

/** The human summary of a training result. */
export function formatTrainBench(r: TrainBenchResult): string {
  const threads = r.threads === null ? '' : `, ${r.threads} thread${r.threads === 1 ? '' : 's'}${r.simd === false ? ', SIMD off' : r.fma ? ', FMA' : ''}`;
  return [
    `${r.arch}  ${r.backend}  train step, batch ${r.batch}${r.chunk_size ? ` in chunks of ${r.chunk_size}` : ''}${threads}  ${r.image_size}x${r.image_size}`,
    `  ${r.images_per_s} img/s (median step ${r.ms_per_step} ms, best ${r.ms_per_step_best} ms)   steps ${r.step_ms.join(', ')} ms   CPU ${r.cpu_util}x`,
    `  loss ${r.final_loss}   peak RSS ${r.peak_rss_mb} MB   tensors left ${r.num_tensors}`,
  ].join('\n');
}

export function registerBench(program: Command): void {
  const cmd = program.command('bench');
  addAlias(cmd, '--batch <n>', 'batchSize', positiveInt);
  cmd
    .description('time inference (or, with --train, full training steps) of one configuration with random weights: images/s, memory')
    .requiredOption('--arch <name>', 'architecture or pretrained tag, e.g. convnext_tiny (weights are random)')
    .option(
      '--batch-size <n>',
      'images per forward pass (per worker call with --workers > 1) or per training step (--train: the global batch, split over the workers)',
      positiveInt,
      1,
    )
    .option('--train', 'time full training steps (forward, backward, AdamW) on random data instead of inference')
    .option('--workers <n>', "model replicas in worker threads (1: this thread), or 'auto': every core", countOrAuto, 1)
    .option('--chunk-size <n>', `--train: ${CHUNK_SIZE_HELP}`, chunkSizeArg, 'auto' as const)
    .option('--backend <name>', 'TF.js backend (also accepted before the command)')
    .option('--threads <n>', "wasm threads of the model in this thread: a count or 'auto' (also accepted before the command)", countOrAuto)
    .option('--image-size <n>', 'square input size', positiveInt, 224)
    .option('--reps <n>', 'timed passes (the best is reported; --train: the median), default 3 (--train: 5)', positiveInt)
    .option('--warmup <n>', 'untimed passes first, default 1 (--train: 2)', nonNegativeInt)
    .option('--json', 'print the result as one JSON object')
    .action(async (o: BenchFlags) => {
      const common = {
        arch: o.arch,
        batch: o.batchSize,
        workers: o.workers === 'auto' ? os.availableParallelism() : o.workers,
        threads: o.threads ?? program.opts<{ threads?: number | 'auto' }>().threads,
        // commander gives a flag given after the command to the command, before it to the program.
        backend: o.backend ?? program.opts<{ backend?: string }>().backend,
        imageSize: o.imageSize,
      };
      if (o.train) {
        const t = await runTrainBenchmark({ ...common, chunkSize: o.chunkSize, reps: o.reps, warmup: o.warmup }).catch((e: unknown) => {
          throw withFlagNames(e, { chunkSize: '--chunk-size', batch: '--batch-size', workers: '--workers' });
        });
        process.stdout.write((o.json ? JSON.stringify(t) : formatTrainBench(t)) + '\n');
        return;
      }
      const r = await runBenchmark({ ...common, reps: o.reps ?? 3, warmup: o.warmup ?? 1 });
      process.stdout.write((o.json ? JSON.stringify(r) : formatBench(r)) + '\n');
    });
}
