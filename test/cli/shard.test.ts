/** Sharding (src/cli/shard.ts), the resumable results file (results_log.ts) and merge (merge.ts), as units. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { writeNpy, readNpyFloat32 } from '../../src/io/npy';
import { mergeShards } from '../../src/cli/merge';
import { ResultsLog } from '../../src/cli/results_log';
import { ShardError, parseShardOutputPath, resolveShard, selectShard, shardOutputPath, shardRange } from '../../src/cli/shard';

describe('shards: which inputs a machine runs', () => {
  it('parses --shard I/N and rejects indices outside 0..N-1', () => {
    expect(resolveShard({ shard: '2/5' }, {})).to.deep.equal({ index: 2, count: 5 });
    expect(resolveShard({}, { JOB_COMPLETION_INDEX: '3' })).to.equal(null);
    expect(() => resolveShard({ shard: '5/5' }, {})).to.throw(ShardError, /--shard 5\/5: the shard index must be in 0..4/);
    expect(() => resolveShard({ shard: '-1/5' }, {})).to.throw(ShardError, /expected I\/N/);
    expect(() => resolveShard({ shard: '1/0' }, {})).to.throw(ShardError, /at least 1/);
    expect(() => resolveShard({ shard: '1/4', shardCount: '3' }, {})).to.throw(ShardError, /disagree/);
    expect(() => resolveShard({ shardCount: '0' }, {})).to.throw(ShardError, /positive integer/);
  });

  it('reads the index from Kubernetes (JOB_COMPLETION_INDEX) or Slurm (SLURM_ARRAY_TASK_ID - MIN) with --shard-count', () => {
    expect(resolveShard({ shardCount: '4' }, { JOB_COMPLETION_INDEX: '3' })).to.deep.equal({ index: 3, count: 4 });
    expect(resolveShard({ shardCount: '4' }, { SLURM_ARRAY_TASK_ID: '0' })).to.deep.equal({ index: 0, count: 4 });
    expect(resolveShard({ shardCount: '4' }, { SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_MIN: '1' })).to.deep.equal({ index: 3, count: 4 });
    expect(resolveShard({ shardCount: '4' }, { JOB_COMPLETION_INDEX: '1', SLURM_ARRAY_TASK_ID: '3' })).to.deep.equal({ index: 1, count: 4 });
    expect(() => resolveShard({ shardCount: '4' }, { JOB_COMPLETION_INDEX: '4' })).to.throw(
      ShardError,
      /JOB_COMPLETION_INDEX = 4 with --shard-count 4: the shard index must be in 0..3/,
    );
    expect(() => resolveShard({ shardCount: '4' }, { JOB_COMPLETION_INDEX: 'x' })).to.throw(ShardError, /not a non-negative integer/);
    expect(() => resolveShard({ shardCount: '4' }, {})).to.throw(ShardError, /needs the shard index/);
  });

  it('splits the sorted list into contiguous shares that differ by at most one and cover it exactly once', () => {
    for (const n of [0, 1, 5, 7, 100, 101]) {
      for (const count of [1, 2, 3, 7, 8, 150]) {
        const inputs = Array.from({ length: n }, (_, i) => `d/${String((i * 7919) % 1000).padStart(4, '0')}-${i}.png`);
        const shards = Array.from({ length: count }, (_, index) => selectShard(inputs, { index, count }));
        const sizes = shards.map((s) => s.length);
        expect(Math.max(...sizes) - Math.min(...sizes), `${n}/${count}`).to.be.at.most(1);
        expect(shards.flat(), `${n}/${count}`).to.deep.equal([...inputs].sort());
        expect(shardRange(n, { index: count - 1, count })[1]).to.equal(n);
      }
    }
  });

  it('orders by code units, not locale, so every machine agrees', () => {
    expect(selectShard(['b.png', 'B.png', 'a.png', 'A/x.png', 'a.PNG'], null)).to.deep.equal(['A/x.png', 'B.png', 'a.PNG', 'a.png', 'b.png']);
    expect(selectShard(['c', 'a', 'b', 'd'], { index: 1, count: 2 })).to.deep.equal(['c', 'd']);
  });

  it('names shard outputs so they sort in index order, and parses them back', () => {
    expect(shardOutputPath('out/emb.npy', { index: 3, count: 16 })).to.equal('out/emb.shard-0003-of-0016.npy');
    expect(shardOutputPath('emb.npy', { index: 7, count: 12345 })).to.equal('emb.shard-00007-of-12345.npy');
    expect(parseShardOutputPath('out/emb.shard-0003-of-0016.npy')).to.deep.equal({ base: 'out/emb.npy', spec: { index: 3, count: 16 } });
    expect(parseShardOutputPath('emb.npy')).to.equal(null);
  });
});

describe('results log: resumable predict --output', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-results-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('appends one line per input, never twice, and reads them back', () => {
    const f = path.join(tmp, 'r.jsonl');
    const a = ResultsLog.open(f);
    expect(a.append({ file: 'x.png', top: [1] })).to.equal(true);
    expect(a.append({ file: 'x.png', top: [2] })).to.equal(false);
    expect(a.append({ file: 'y.png', error: 'cannot decode' })).to.equal(true);
    a.close();
    const b = ResultsLog.open(f);
    expect([...b.done.keys()]).to.deep.equal(['x.png', 'y.png']);
    expect(b.done.get('x.png')!.top).to.deep.equal([1]);
    expect(b.repairedBytes).to.equal(0);
    expect(b.append({ file: 'y.png' })).to.equal(false);
    b.close();
    expect(fs.readFileSync(f, 'utf8').split('\n')).to.have.length(3);
  });

  it('cuts off a torn last line (no newline, or not JSON) and resumes after it', () => {
    const f = path.join(tmp, 'r.jsonl');
    const good = '{"file":"a.png","top":[]}\n{"file":"b.png","top":[]}\n';
    for (const torn of ['{"file":"c.png","to', '{"file":"c.png","top":[]}', '{"fi\n']) {
      fs.writeFileSync(f, good + torn);
      const log = ResultsLog.open(f);
      expect(log.repairedBytes, torn).to.equal(Buffer.byteLength(torn));
      expect([...log.done.keys()]).to.deep.equal(['a.png', 'b.png']);
      log.append({ file: 'c.png', top: [] });
      log.close();
      expect(fs.readFileSync(f, 'utf8')).to.equal(good + '{"file":"c.png","top":[]}\n');
    }
  });

  it('refuses a file with a malformed line in the middle, naming the line', () => {
    const f = path.join(tmp, 'r.jsonl');
    const text = '{"file":"a.png"}\nnot json\n{"file":"b.png"}\n';
    fs.writeFileSync(f, text);
    expect(() => ResultsLog.open(f)).to.throw(/r\.jsonl: line 2 is not a JSON object with a "file" field/);
    expect(fs.readFileSync(f, 'utf8')).to.equal(text); // untouched
  });
});

describe('merge: per-shard embeddings in input order', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-merge-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  function writeShard(index: number, count: number, files: string[], c = 3): void {
    const npy = shardOutputPath(path.join(tmp, 'emb.npy'), { index, count });
    const data = Float32Array.from(files.flatMap((f) => Array.from({ length: c }, (_, k) => f.charCodeAt(0) * 10 + k)));
    writeNpy(npy, { shape: [files.length, c], data });
    fs.writeFileSync(npy.replace(/\.npy$/, '.files.txt'), files.join('\n') + '\n');
  }

  it('concatenates shards 0..N-1 (an empty one included), found beside the output', () => {
    writeShard(2, 3, ['e', 'f']);
    writeShard(0, 3, ['a', 'b', 'c']);
    writeShard(1, 3, []);
    const r = mergeShards(path.join(tmp, 'emb.npy'));
    expect(r).to.include({ rows: 5, cols: 3, shards: 3 });
    const a = readNpyFloat32(path.join(tmp, 'emb.npy'));
    expect(a.shape).to.deep.equal([5, 3]);
    expect(Array.from(a.data.filter((_, i) => i % 3 === 0))).to.deep.equal(['a', 'b', 'c', 'e', 'f'].map((f) => f.charCodeAt(0) * 10));
    expect(fs.readFileSync(path.join(tmp, 'emb.files.txt'), 'utf8')).to.equal('a\nb\nc\ne\nf\n');
  });

  it('names missing shards, mixed shard counts and lists that are not one sorted input list', () => {
    writeShard(0, 3, ['a']);
    writeShard(2, 3, ['c']);
    expect(() => mergeShards(path.join(tmp, 'emb.npy'))).to.throw(ShardError, /missing shard\(s\) 1 of 3/);
    writeShard(1, 3, ['z']);
    expect(() => mergeShards(path.join(tmp, 'emb.npy'))).to.throw(ShardError, /not from one input list: z comes before c/);
    writeShard(1, 4, ['b']);
    expect(() => mergeShards(path.join(tmp, 'emb.npy'))).to.throw(ShardError, /disagree on the number of shards/);
  });
});
