/**
 * The CLI's option parsers and help strings, shared by every command so a flag means the same
 * everywhere (--batch-size, --workers auto|N, --image-size 32-2048, --max-image-pixels), and the
 * old spellings kept as hidden aliases.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { checkInputSize } from '../model/preprocessing';
import { OutOfMemoryError } from '../errors';
import { CHUNK_SIZE_RULE, ChunkSize, isChunkSize } from '../train/data_parallel/chunks';

/** A positive integer. */
export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** --workers, --threads: a positive integer or 'auto'. */
export function countOrAuto(v: string): number | 'auto' {
  if (v === 'auto') return 'auto';
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be 'auto' or a positive integer");
  return n;
}

/** --image-size: the library's bound (32 to 2048), named after the flag. */
export function imageSizeArg(v: string): number {
  try {
    return checkInputSize(Number(v), '--image-size');
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message.replace(/^--image-size must be /, 'must be '));
  }
}

/** --max-image-pixels: a positive integer, or 'none' for no limit. */
export function maxPixelsArg(v: string): number {
  if (v === 'none') return Infinity;
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer (pixels) or 'none'");
  return n;
}

export const MAX_PIXELS_HELP = `largest image decoded, width x height in pixels, checked from its header before decoding ('none': no limit)`;

export const WORKERS_HELP = "worker threads with model replicas, or 'auto': every core when there is more than one batch";

export const TRAIN_WORKERS_HELP =
  "data-parallel worker threads, a model replica each with its share of every batch, or 'auto': every core (at most one per image pair); 1: this thread";

export const CHUNK_SIZE_HELP =
  "samples a replica computes at once (its share of a batch runs in chunks, same result), an even number, or 'auto': what fits the 4 GB wasm heap (other backends: no chunks)";

/** --chunk-size: 'auto' or an even integer >= 2. */
export function chunkSizeArg(v: string): ChunkSize {
  const n = v === 'auto' ? v : Number(v);
  if (!isChunkSize(n)) throw new InvalidArgumentError(`must be ${CHUNK_SIZE_RULE}`);
  return n;
}

/** The library's OutOfMemoryError in a command's words (its option names replaced by `flags`); other errors as they are. */
export function withFlagNames(e: unknown, flags: Readonly<Record<string, string>>): unknown {
  return e instanceof OutOfMemoryError ? e.renamed(flags) : e;
}

/** A positive finite number. */
export function positiveFloat(v: string): number {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('must be a positive number');
  return n;
}

/** A number in [0, 1). */
export function fraction(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError('must be in [0, 1)');
  return n;
}

/**
 * An old spelling of an option, kept working but hidden from --help: `--batch 8` sets batchSize as
 * `--batch-size 8` does. Give it no default: the new option's default stands unless the alias is used.
 */
export function addAlias(cmd: Command, flags: string, target: string, parse: (v: string) => unknown): Command {
  const opt = new Option(flags).hideHelp();
  cmd.addOption(opt);
  cmd.on(`option:${opt.name()}`, (v: string) => cmd.setOptionValueWithSource(target, parse(v), 'cli'));
  return cmd;
}
