/**
 * Sharded, resumable batch inference through the real CLI (child processes):
 *   - 3 shards run concurrently cover the inputs exactly once and equal one unsharded run
 *     (predict --output per shard; embed per-shard .npy + `convnext merge`);
 *   - kill -9 in the middle of a shard, then the same command again: every image exactly once.
 * --batch 1 makes every image's numbers independent of how the inputs were grouped.
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { readNpyFloat32 } from '../../src/io/npy';
import { convertCheckpoint } from '../../weights-converter/convert';
import { writeModelDir } from '../../src/io/model_dir';
import { encodePng } from '../../src/data/png';

const ROOT = path.join(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'convnext.js');
const ENV = { ...process.env, CONVNEXT_BACKEND: 'wasm', CONVNEXT_THREADS: '1' };

interface Line {
  file: string;
  top?: { label: string; index: number; prob: number }[];
  error?: string;
}

function readLines(f: string): Line[] {
  return fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
}

function runAsync(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(process.execPath, [BIN, ...args], { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, done };
}

function writeImages(dir: string, n: number): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const px = new Uint8Array(24 * 24 * 3).map((_, j) => (j * 7 + i * 31 + ((j * i) % 13)) % 256);
    const f = path.join(dir, `im${String(i).padStart(3, '0')}.png`);
    fs.writeFileSync(f, encodePng({ width: 24, height: 24, data: px }));
    files.push(f);
  }
  return files;
}

describe('sharded batch inference (CLI child processes)', function () {
  this.timeout(300_000);
  let tmp: string;
  let model: string;
  const common = () => ['--model', model, '--image-size', '32', '--workers', '1', '--batch', '1'];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-shard-'));
    const c = await convertCheckpoint(path.join(ROOT, 'test/fixtures/parity/v1_official/checkpoint.pth'));
    model = path.join(tmp, 'model');
    writeModelDir(model, c.weights, c.meta);
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('predict: 3 concurrent shards cover every input once and equal one unsharded run; a bad image is reported, not fatal', async () => {
    const imgs = path.join(tmp, 'imgs');
    const files = writeImages(imgs, 23);
    fs.writeFileSync(path.join(imgs, 'broken.png'), 'not a png');
    const all = path.join(tmp, 'all.jsonl');
    const whole = spawnSync(process.execPath, [BIN, 'predict', imgs, ...common(), '--output', all], { env: ENV, encoding: 'utf8' });
    expect(whole.status, whole.stderr).to.equal(1);
    expect(whole.stderr).to.match(/skipped .*broken\.png/);
    const runs = [0, 1, 2].map((i) => runAsync(['predict', imgs, ...common(), '--shard', `${i}/3`, '--output', path.join(tmp, `s${i}.jsonl`)]));
    const results = await Promise.all(runs.map((r) => r.done));
    const shards = [0, 1, 2].map((i) => readLines(path.join(tmp, `s${i}.jsonl`)));
    expect(shards.map((s) => s.length)).to.deep.equal([8, 8, 8]); // 24 inputs (23 images + broken.png)
    expect(results.map((r) => r.code)).to.deep.equal([1, 0, 0]); // broken.png sorts first: shard 0
    const union = shards.flat();
    expect(new Set(union.map((l) => l.file)).size).to.equal(union.length); // no overlap
    const ref = new Map(readLines(all).map((l) => [l.file, l]));
    expect(ref.size).to.equal(files.length + 1);
    expect(union.map((l) => l.file).sort()).to.deep.equal([...ref.keys()].sort());
    for (const l of union) expect(l, l.file).to.deep.equal(ref.get(l.file));
    expect(union.filter((l) => l.error).map((l) => path.basename(l.file))).to.deep.equal(['broken.png']);
    // The share of each shard is the sorted list's contiguous range.
    expect(shards.map((s) => s.map((l) => l.file))).to.deep.equal([0, 1, 2].map((i) => [...ref.keys()].sort().slice(8 * i, 8 * i + 8)));
  });

  it('embed: 3 concurrent shards merged (convnext merge) equal one unsharded embed, rows in input order', async () => {
    const imgs = path.join(tmp, 'emb-imgs');
    writeImages(imgs, 10);
    const whole = spawnSync(process.execPath, [BIN, 'embed', imgs, ...common(), '--output', path.join(tmp, 'whole.npy')], { env: ENV, encoding: 'utf8' });
    expect(whole.status, whole.stderr).to.equal(0);
    const runs = [0, 1, 2].map((i) => runAsync(['embed', imgs, ...common(), '--shard', `${i}/3`, '--output', path.join(tmp, 'emb.npy')]));
    expect((await Promise.all(runs.map((r) => r.done))).map((r) => r.code)).to.deep.equal([0, 0, 0]);
    expect(fs.readdirSync(tmp).filter((f) => /^emb\.shard-000\d-of-0003\.(npy|files\.txt)$/.test(f))).to.have.length(6);
    const merged = spawnSync(process.execPath, [BIN, 'merge', path.join(tmp, 'emb.npy'), '--json'], { env: ENV, encoding: 'utf8' });
    expect(merged.status, merged.stderr).to.equal(0);
    expect(JSON.parse(merged.stdout)).to.include({ rows: 10, cols: 24, shards: 3 });
    const a = readNpyFloat32(path.join(tmp, 'emb.npy'));
    const b = readNpyFloat32(path.join(tmp, 'whole.npy'));
    expect(a.shape).to.deep.equal(b.shape);
    expect(fs.readFileSync(path.join(tmp, 'emb.files.txt'), 'utf8')).to.equal(fs.readFileSync(path.join(tmp, 'whole.files.txt'), 'utf8'));
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).to.equal(true);
  });

  it('kill -9 mid-shard, then the same command again: every image exactly once (torn last line repaired)', async () => {
    const imgs = path.join(tmp, 'many');
    const files = writeImages(imgs, 160);
    fs.writeFileSync(path.join(imgs, 'zz-broken.png'), 'not a png');
    const out = path.join(tmp, 'resume.jsonl');
    const args = ['predict', imgs, ...common(), '--shard', '1/2', '--output', out];
    const first = runAsync(args);
    // Kill once some, not all, of the shard's 81 lines are there.
    const count = () => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8').split('\n').length - 1 : 0);
    const t0 = Date.now();
    while (count() < 10 && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 5));
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal, 'the first run must have been killed mid-shard').to.equal('SIGKILL');
    const partial = count();
    expect(partial).to.be.within(10, 80);
    // A single write() is not torn by kill -9 in practice; a machine crash can tear one: simulate it.
    fs.appendFileSync(out, '{"file":"' + files[120].slice(0, 10));
    const second = runAsync(args);
    const r = await second.done;
    expect(r.stderr).to.match(/cut off a torn last line/);
    expect(r.stderr).to.match(new RegExp(`${partial} of 81 input\\(s\\) already done`));
    expect(r.code).to.equal(1); // zz-broken.png is in this shard: reported, and the rest still ran
    const lines = readLines(out); // every line parses
    const want = [...files, path.join(imgs, 'zz-broken.png')].sort().slice(80, 161);
    expect(lines.map((l) => l.file).sort()).to.deep.equal(want);
    expect(new Set(lines.map((l) => l.file)).size).to.equal(lines.length);
    // A third run has nothing left to do and writes nothing.
    const size = fs.statSync(out).size;
    const third = spawnSync(process.execPath, [BIN, ...args], { env: ENV, encoding: 'utf8' });
    expect(third.stderr).to.match(/81 of 81 input\(s\) already done/);
    expect(fs.statSync(out).size).to.equal(size);
  });
});
