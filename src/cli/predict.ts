/**
 * `convnext predict <image | dir | glob>... --model M [--top 5] [--batch N] [--json]` and
 * `convnext embed <images...> --model M --output emb.npy`. A file that cannot be read or decoded is
 * named on stderr and skipped; the exit code is 1 at the end if any failed.
 */
import * as fs from 'fs';
import { Command } from 'commander';
import { ConvNeXtError, ImageError } from '../errors';
import { MAX_IMAGE_PIXELS } from '../data/decode';
import { DEFAULT_BATCH_SIZE, DEFAULT_TOPK, Predictor, readLabelsFile, runTolerant } from '../inference';
import { writeNpy } from '../io/npy';
import { checkOutputFile } from '../io/output';
import { SkippedEntry } from '../util/fs';
import { withBackend } from './common';
import { MAX_PIXELS_HELP, WORKERS_HELP, addAlias, countOrAuto, imageSizeArg, maxPixelsArg, positiveInt } from './options';
import { expandImageArgs } from './inputs';
import { downloadBar, progressBar } from './progress';
import { ResultsLog } from './results_log';
import { ShardSpec, resolveShard, selectShard, shardOutputPath } from './shard';

interface ModelFlags {
  model: string;
  batchSize: number;
  labels?: string;
  cacheDir?: string;
  offline?: boolean;
  imageSize?: number;
  workers: number | 'auto';
  maxImagePixels: number;
}

function addModelFlags(cmd: Command): Command {
  addAlias(cmd, '--batch <n>', 'batchSize', positiveInt);
  return cmd
    .requiredOption(
      '--model <model>',
      'architecture (its default pretrained tag), pretrained tag (convnext_tiny.fb_in1k), model dir / run dir / URL, or a PyTorch checkpoint',
    )
    .option('--batch-size <n>', 'images per forward pass', positiveInt, DEFAULT_BATCH_SIZE)
    .option('--workers <n>', WORKERS_HELP, countOrAuto, 'auto' as const)
    .option('--labels <file>', 'class names: JSON array or one per line')
    .option('--image-size <n>', "input size, 32-2048 (default: the model's)", imageSizeArg)
    .option('--max-image-pixels <n>', MAX_PIXELS_HELP, maxPixelsArg, MAX_IMAGE_PIXELS)
    .option('--cache-dir <dir>', 'zoo cache (default $CONVNEXT_CACHE or ~/.cache/convnext-tfjs)')
    .option('--offline', 'never touch the network (zoo models must be cached)');
}

async function loadPredictor(program: Command, o: ModelFlags): Promise<Predictor> {
  await withBackend(program);
  const bar = downloadBar();
  try {
    return await Predictor.load(o.model, {
      batchSize: o.batchSize,
      workers: o.workers,
      maxImagePixels: o.maxImagePixels,
      labels: o.labels ? readLabelsFile(o.labels) : undefined,
      preprocessing: o.imageSize ? { inputSize: o.imageSize } : undefined,
      cacheDir: o.cacheDir,
      offline: o.offline,
      onProgress: bar.onProgress,
    });
  } finally {
    bar.stop();
  }
}

/**
 * Files for the image arguments. Patterns matching nothing and entries a directory walk left out
 * (FIFOs, devices, broken links, loops) are named with the reason and count as failures; files
 * without an image extension are summarised in one line.
 */
export function imageFiles(inputs: string[]): { files: string[]; unmatched: string[] } {
  const r = expandImageArgs(inputs);
  r.unmatched.forEach((u) => process.stderr.write(`no images match ${u}\n`));
  reportSkipped(r.skipped);
  const failed = r.skipped.filter((s) => s.kind !== 'extension').map((s) => s.path);
  if (r.files.length === 0) throw new ConvNeXtError(failed.length ? `no readable input images (${failed.length} skipped)` : 'no input images');
  return { files: r.files, unmatched: [...r.unmatched, ...failed] };
}

interface ShardFlags {
  shard?: string;
  shardCount?: string;
}

/** --shard I/N, or --shard-count N with the index from the job runner (src/cli/shard.ts). */
function addShardFlags(cmd: Command): Command {
  return cmd
    .option('--shard <I/N>', 'run shard I (0-based) of N: a deterministic, even share of the sorted input list')
    .option('--shard-count <n>', 'number of shards; the index comes from $JOB_COMPLETION_INDEX (Kubernetes) or $SLURM_ARRAY_TASK_ID (Slurm)');
}

/** This run's inputs: the whole list as given, or the shard's share of it sorted. */
function shardFiles(files: string[], shard: ShardSpec | null): string[] {
  return shard ? selectShard(files, shard) : files;
}

/** Names what a directory walk left out: one line each, other extensions summarised. */
export function reportSkipped(skipped: SkippedEntry[]): void {
  const ext = skipped.filter((s) => s.kind === 'extension');
  for (const s of skipped) if (s.kind !== 'extension') process.stderr.write(`skipped ${s.path}: ${s.reason}\n`);
  if (ext.length) {
    const shown = ext
      .slice(0, 3)
      .map((s) => s.path)
      .join(', ');
    process.stderr.write(`ignored ${ext.length} file(s) without an image extension: ${shown}${ext.length > 3 ? `, ... and ${ext.length - 3} more` : ''}\n`);
  }
}

/** `skipped <file>: <reason>` (the reason without the file's name repeated), and the decoder's own words when there are any. */
export function reportFailure(file: string, e: Error): void {
  const prefix = `image ${file}: `;
  const reason = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
  const detail = e instanceof ImageError && e.detail && !reason.includes(e.detail) ? ` [decoder: ${e.detail}]` : '';
  process.stderr.write(`skipped ${file}: ${reason}${detail}\n`);
}

export function registerPredict(program: Command): void {
  addAlias(
    addShardFlags(
      addModelFlags(
        program
          .command('predict')
          .description('classify images (files, directories, globs): top-k labels with probabilities')
          .argument('<inputs...>', 'image files, directories (recursive) or glob patterns'),
      ),
    ),
    '--top <k>',
    'topk',
    positiveInt,
  )
    .option('--topk <k>', 'classes to show per image', positiveInt, DEFAULT_TOPK)
    .option('--json', 'one JSON line per image: {"file", "top": [{"label", "index", "prob"}]}')
    .option(
      '--output <results.jsonl>',
      'append the --json lines (and {"file", "error"} for failed inputs) to this file as they finish; a re-run skips inputs already there',
    )
    .action(async (inputs: string[], o: ModelFlags & ShardFlags & { topk: number; json?: boolean; output?: string }) => {
      const shard = resolveShard(o);
      const expanded = imageFiles(inputs);
      const unmatched = expanded.unmatched;
      let files = shardFiles(expanded.files, shard);
      const log = o.output ? ResultsLog.open(o.output) : null;
      let failures = unmatched.length;
      if (log) {
        if (log.repairedBytes) process.stderr.write(`${o.output}: cut off a torn last line (${log.repairedBytes} bytes)\n`);
        const before = files.length;
        failures += files.filter((f) => log.done.get(f)?.error !== undefined).length;
        files = files.filter((f) => !log.done.has(f));
        if (before > files.length) process.stderr.write(`${o.output}: ${before - files.length} of ${before} input(s) already done, skipped\n`);
      }
      if (files.length === 0) {
        log?.close();
        if (failures) process.exitCode = 1;
        return;
      }
      const predictor = await loadPredictor(program, o);
      const bar = progressBar(files.length, 'predict');
      try {
        await runTolerant(predictor, files, predictor.classifyJob({ topk: o.topk }), (r) => {
          const file = r.input as string;
          bar.update(r.index + 1);
          if ('error' in r) {
            failures++;
            reportFailure(file, r.error);
            log?.append({ file, error: r.error.message });
          } else if (log) {
            log.append({ file, top: r.value.map((p) => ({ label: p.label, index: p.index, prob: +p.prob.toFixed(6) })) });
          } else if (o.json) {
            process.stdout.write(JSON.stringify({ file, top: r.value.map((p) => ({ label: p.label, index: p.index, prob: +p.prob.toFixed(6) })) }) + '\n');
          } else {
            process.stdout.write(`${file}\n${r.value.map((p) => `  ${(100 * p.prob).toFixed(2).padStart(6)}%  ${p.label} (${p.index})`).join('\n')}\n`);
          }
        });
      } finally {
        bar.stop();
        log?.close();
        await predictor.dispose();
      }
      if (failures) {
        process.stderr.write(`${failures} input(s) failed\n`);
        process.exitCode = 1;
      }
    });

  addShardFlags(
    addModelFlags(
      program
        .command('embed')
        .description('pooled pre-logits embeddings of images -> float32 .npy [N, C] (+ <output>.files.txt listing the images in row order)')
        .argument('<inputs...>', 'image files, directories or glob patterns'),
    ),
  )
    .requiredOption('--output <emb.npy>', 'where to write the embeddings (with --shard: <emb>.shard-IIII-of-NNNN.npy, combined by `convnext merge`)')
    .action(async (inputs: string[], o: ModelFlags & ShardFlags & { output: string }) => {
      checkOutputFile(o.output, '--output');
      const shard = resolveShard(o);
      const expanded = imageFiles(inputs);
      const unmatched = expanded.unmatched;
      const files = shardFiles(expanded.files, shard);
      const output = shard ? shardOutputPath(o.output, shard) : o.output;
      const predictor = await loadPredictor(program, o);
      const rows: Float32Array[] = [];
      const names: string[] = [];
      let failures = unmatched.length;
      const c = predictor.model.numFeatures;
      const bar = progressBar(files.length, 'embed');
      try {
        await runTolerant(predictor, files, predictor.embedJob(), (r) => {
          bar.update(r.index + 1);
          if ('error' in r) {
            failures++;
            reportFailure(r.input as string, r.error);
          } else {
            rows.push(r.value);
            names.push(r.input as string);
          }
        });
      } finally {
        bar.stop();
        await predictor.dispose();
      }
      const data = new Float32Array(rows.length * c);
      rows.forEach((row, i) => data.set(row, i * c));
      writeNpy(output, { shape: [rows.length, c], data });
      const list = `${output.replace(/\.npy$/, '')}.files.txt`;
      const tmp = `${list}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, names.join('\n') + '\n');
      fs.renameSync(tmp, list);
      process.stderr.write(`wrote ${rows.length} x ${c} embeddings to ${output} (rows listed in ${list})\n`);
      if (failures) {
        process.stderr.write(`${failures} input(s) failed\n`);
        process.exitCode = 1;
      }
    });
}
