/**
 * Deterministic sharding of a batch job's inputs across N machines of any job runner (Kubernetes
 * Indexed Jobs, Slurm job arrays, GNU parallel, a cloud batch service): every machine runs the same
 * command with its own index and takes one share of the sorted, expanded input list.
 *
 *   --shard I/N                          0-based I in 0..N-1
 *   --shard-count N                      I from $JOB_COMPLETION_INDEX (Kubernetes Indexed Job), or
 *                                        $SLURM_ARRAY_TASK_ID - $SLURM_ARRAY_TASK_MIN (Slurm array)
 *
 * The split: sort by UTF-16 code units (locale-independent, so every machine agrees), then shard I
 * takes the contiguous range [floor(I*n/N), floor((I+1)*n/N)). Shares differ by at most one input,
 * the N ranges cover the list exactly once, and concatenating shards 0..N-1 gives the sorted list
 * (which is how `convnext merge` restores input order).
 */
import { ConvNeXtError } from '../errors';

export interface ShardSpec {
  /** 0-based shard index. */
  index: number;
  /** Number of shards. */
  count: number;
}

/** An invalid --shard / --shard-count / job-runner index. */
export class ShardError extends ConvNeXtError {}

function nonNegInt(s: string): number | null {
  return /^\d+$/.test(s.trim()) ? Number(s.trim()) : null;
}

/** Where the shard index came from when --shard-count is given alone. */
function indexFromEnv(env: NodeJS.ProcessEnv): { index: number; from: string } | null {
  const k8s = env.JOB_COMPLETION_INDEX;
  if (k8s !== undefined && k8s !== '') {
    const i = nonNegInt(k8s);
    if (i === null) throw new ShardError(`JOB_COMPLETION_INDEX='${k8s}' is not a non-negative integer`);
    return { index: i, from: 'JOB_COMPLETION_INDEX' };
  }
  const slurm = env.SLURM_ARRAY_TASK_ID;
  if (slurm !== undefined && slurm !== '') {
    const i = nonNegInt(slurm);
    if (i === null) throw new ShardError(`SLURM_ARRAY_TASK_ID='${slurm}' is not a non-negative integer`);
    // --array=1-8 numbers tasks from 1: shards are counted from the array's first task.
    const min = env.SLURM_ARRAY_TASK_MIN !== undefined && env.SLURM_ARRAY_TASK_MIN !== '' ? nonNegInt(env.SLURM_ARRAY_TASK_MIN) : 0;
    if (min === null) throw new ShardError(`SLURM_ARRAY_TASK_MIN='${env.SLURM_ARRAY_TASK_MIN}' is not a non-negative integer`);
    return { index: i - min, from: min ? 'SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN' : 'SLURM_ARRAY_TASK_ID' };
  }
  return null;
}

/**
 * The shard this process runs, from `--shard I/N`, or `--shard-count N` with the index from the
 * job runner's environment; null when neither flag is given (the whole list).
 */
export function resolveShard(opts: { shard?: string; shardCount?: number | string }, env: NodeJS.ProcessEnv = process.env): ShardSpec | null {
  let count: number | null = null;
  if (opts.shardCount !== undefined) {
    count = nonNegInt(String(opts.shardCount));
    if (count === null || count < 1) throw new ShardError(`--shard-count ${opts.shardCount}: must be a positive integer`);
  }
  if (opts.shard !== undefined) {
    const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(opts.shard);
    if (!m) throw new ShardError(`--shard ${opts.shard}: expected I/N, e.g. 0/4 (0-based index / number of shards)`);
    const index = Number(m[1]);
    const n = Number(m[2]);
    if (n < 1) throw new ShardError(`--shard ${opts.shard}: the number of shards must be at least 1`);
    if (count !== null && count !== n) throw new ShardError(`--shard ${opts.shard} and --shard-count ${count} disagree`);
    return checked({ index, count: n }, `--shard ${opts.shard}`);
  }
  if (count === null) return null;
  const fromEnv = indexFromEnv(env);
  if (!fromEnv)
    throw new ShardError(
      `--shard-count ${count} needs the shard index: give --shard I/${count}, or run under a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) or a Slurm array (SLURM_ARRAY_TASK_ID)`,
    );
  return checked({ index: fromEnv.index, count }, `${fromEnv.from} = ${fromEnv.index} with --shard-count ${count}`);
}

function checked(s: ShardSpec, what: string): ShardSpec {
  if (!Number.isSafeInteger(s.index) || s.index < 0 || s.index >= s.count) {
    throw new ShardError(`${what}: the shard index must be in 0..${s.count - 1}`);
  }
  return s;
}

/** Locale-independent order every machine agrees on. */
export function compareInputs(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Bounds [start, end) of shard `s` in a list of n inputs. */
export function shardRange(n: number, s: ShardSpec): [number, number] {
  return [Math.floor((s.index * n) / s.count), Math.floor(((s.index + 1) * n) / s.count)];
}

/** This shard's inputs: the sorted list's range for `s` (the whole list, sorted, when s is null). */
export function selectShard(inputs: readonly string[], s: ShardSpec | null): string[] {
  const sorted = [...inputs].sort(compareInputs);
  if (!s) return sorted;
  const [a, b] = shardRange(sorted.length, s);
  return sorted.slice(a, b);
}

/** Zero-padded so that shard files sort in index order: emb.npy -> emb.shard-0003-of-0016.npy. */
export function shardOutputPath(output: string, s: ShardSpec): string {
  const w = Math.max(4, String(s.count - 1).length);
  const tag = `shard-${String(s.index).padStart(w, '0')}-of-${String(s.count).padStart(w, '0')}`;
  return /\.npy$/i.test(output) ? output.replace(/\.npy$/i, `.${tag}.npy`) : `${output}.${tag}`;
}

/** Parses a shard file name written by shardOutputPath, or null. */
export function parseShardOutputPath(file: string): { base: string; spec: ShardSpec } | null {
  const m = /^(.*)\.shard-(\d+)-of-(\d+)\.npy$/i.exec(file);
  return m ? { base: `${m[1]}.npy`, spec: { index: Number(m[2]), count: Number(m[3]) } } : null;
}
