/**
 * `convnext merge <emb.npy> [shard files...]`: combines the per-shard embeddings that
 * `embed --shard I/N --output emb.npy` wrote (emb.shard-IIII-of-NNNN.npy + .files.txt) into
 * emb.npy + emb.files.txt, rows in input order. Shards are contiguous ranges of the sorted input
 * list (src/cli/shard.ts), so input order is shard order; every shard 0..N-1 must be there once.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Command } from 'commander';
import { encodeNpy, readNpyFloat32 } from '../io/npy';
import { writeFileAtomic } from '../util/fs';
import { ShardError, compareInputs, parseShardOutputPath } from './shard';

function filesTxt(npy: string): string {
  return `${npy.replace(/\.npy$/i, '')}.files.txt`;
}

function readList(file: string): string[] {
  if (!fs.existsSync(file)) throw new ShardError(`${file}: missing (each shard's .npy needs the .files.txt written beside it)`);
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}

/** Merges the shards into `output`; returns rows and columns written. */
export function mergeShards(output: string, shardFiles?: string[]): { rows: number; cols: number; shards: number; files: string[] } {
  let candidates = shardFiles;
  if (!candidates || candidates.length === 0) {
    const dir = path.dirname(path.resolve(output));
    const stem = path.basename(output).replace(/\.npy$/i, '');
    candidates = fs.existsSync(dir)
      ? fs
          .readdirSync(dir)
          .filter((f) => f.startsWith(`${stem}.shard-`) && /\.npy$/i.test(f))
          .map((f) => path.join(path.dirname(output), f))
      : [];
    if (candidates.length === 0) throw new ShardError(`no shard files ${stem}.shard-*-of-*.npy beside ${output}`);
  }
  const parsed = candidates.map((f) => {
    const p = parseShardOutputPath(f);
    if (!p) throw new ShardError(`${f}: not a shard file (expected <name>.shard-IIII-of-NNNN.npy)`);
    return { file: f, ...p.spec };
  });
  const count = parsed[0].count;
  if (parsed.some((p) => p.count !== count))
    throw new ShardError(`shard files disagree on the number of shards: ${[...new Set(parsed.map((p) => p.count))].join(', ')}`);
  parsed.sort((a, b) => a.index - b.index);
  const dup = parsed.find((p, i) => i > 0 && parsed[i - 1].index === p.index);
  if (dup) throw new ShardError(`shard ${dup.index} of ${count} given twice`);
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !parsed.some((p) => p.index === i));
  if (missing.length) throw new ShardError(`missing shard(s) ${missing.join(', ')} of ${count}: run them first`);

  const parts: Float32Array[] = [];
  const names: string[] = [];
  let cols = -1;
  for (const p of parsed) {
    const a = readNpyFloat32(p.file);
    if (a.shape.length !== 2) throw new ShardError(`${p.file}: expected a 2-D [rows, C] array, got [${a.shape.join(', ')}]`);
    const list = readList(filesTxt(p.file));
    if (list.length !== a.shape[0]) throw new ShardError(`${p.file}: ${a.shape[0]} rows but ${filesTxt(p.file)} lists ${list.length} files`);
    if (cols >= 0 && a.shape[0] > 0 && a.shape[1] !== cols) throw new ShardError(`${p.file}: ${a.shape[1]} columns, earlier shards have ${cols}`);
    if (a.shape[0] > 0) cols = a.shape[1];
    parts.push(a.data);
    names.push(...list);
  }
  for (let i = 1; i < names.length; i++) {
    if (compareInputs(names[i - 1], names[i]) >= 0) throw new ShardError(`shards are not from one input list: ${names[i - 1]} comes before ${names[i]}`);
  }
  if (cols < 0) cols = readNpyFloat32(parsed[0].file).shape[1] ?? 0;
  const data = new Float32Array(names.length * cols);
  let off = 0;
  for (const d of parts) {
    data.set(d, off);
    off += d.length;
  }
  writeFileAtomic(output, encodeNpy({ shape: [names.length, cols], data }));
  writeFileAtomic(filesTxt(output), names.length ? names.join('\n') + '\n' : '');
  return { rows: names.length, cols, shards: count, files: [output, filesTxt(output)] };
}

export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description('combine `embed --shard` outputs (<emb>.shard-IIII-of-NNNN.npy + .files.txt) into <emb>.npy + <emb>.files.txt in input order')
    .argument('<output>', 'merged .npy to write (its shards are found beside it)')
    .argument('[shards...]', 'shard .npy files (default: every <output stem>.shard-*.npy beside the output)')
    .option('--json', 'print a JSON summary')
    .action((output: string, shards: string[], o: { json?: boolean }) => {
      const r = mergeShards(output, shards);
      if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(`merged ${r.shards} shard(s): ${r.rows} x ${r.cols} -> ${r.files.join(', ')}\n`);
    });
}
