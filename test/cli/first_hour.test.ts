/**
 * A newcomer's first hour with the CLI (issue 14): the headline command without network says what
 * to do, models can be discovered, info takes tags and directories, train has defaults and lists
 * what is missing at once, and every command that writes a file says so.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { RgbImage } from '../../src/data/image';
import { readNpyFloat32 } from '../../src/io/npy';
import { encodePng } from '../../src/data/png';
import { useTmpDir } from '../helpers';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/convnext.js');
const IMAGES = path.join(ROOT, 'test/fixtures/images');
const PARITY = path.join(ROOT, 'test/fixtures/parity/v2_official');

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 170_000, env: { ...process.env, CONVNEXT_BACKEND: 'wasm', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function noStack(r: { stderr: string }): void {
  expect(r.stderr, 'no stack trace').to.not.match(/\n\s+at /);
}

describe('convnext CLI: the first hour', function () {
  this.timeout(180_000);
  const tmp = useTmpDir('convnext-cli-first-');

  it('the headline command without network says what to do (cache path, CONVNEXT_MIRROR, convnext convert)', () => {
    // A closed port on localhost: the connection is refused at once, as without network.
    const cache = tmp('cache');
    const r = run(['predict', path.join(IMAGES, 'chelsea.png'), '--model', 'convnext_tiny.fb_in1k', '--cache-dir', cache], {
      CONVNEXT_MIRROR: 'http://127.0.0.1:59999/',
    });
    expect(r.code, r.stderr).to.equal(1);
    noStack(r);
    expect(r.stderr).to.match(/^error: download of http:\/\/127\.0\.0\.1:59999\/convnext\/convnext_tiny_1k_224_ema\.pth failed: fetch failed: ECONNREFUSED\. /);
    expect(r.stderr).to.include(
      `download https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224_ema.pth elsewhere and place it at ${path.join(cache, 'checkpoints', 'convnext_tiny_1k_224_ema.pth')}`,
    );
    expect(r.stderr).to.include('CONVNEXT_MIRROR=http://host/ to a server holding convnext/convnext_tiny_1k_224_ema.pth');
    expect(r.stderr).to.include('convnext convert <checkpoint.pth> <dir>, then --model <dir>');
  });

  it('convnext models [pattern] lists architectures and tags with input size, classes, params and licence (--json)', () => {
    const r = run(['models', 'convnextv2_atto', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const j = JSON.parse(r.stdout);
    expect(j.architectures).to.deep.equal([{ name: 'convnextv2_atto', version: 2, params: 3_708_400, gmacs_224: j.architectures[0].gmacs_224 }]);
    expect(j.pretrained.map((p: { name: string }) => p.name)).to.include('convnextv2_atto.fcmae_ft_in1k');
    const atto = j.pretrained.find((p: { name: string }) => p.name === 'convnextv2_atto.fcmae_ft_in1k');
    expect(atto).to.deep.include({ arch: 'convnextv2_atto', input_size: 224, num_classes: 1000, params: 3_708_400, license: 'CC-BY-NC-4.0' });
    const text = run(['models', '*_384']);
    expect(text.code).to.equal(0);
    expect(text.stdout).to.match(/^pretrained \(\d+; downloaded on first use\):\n/);
    expect(text.stdout).to.match(/convnext_tiny\.fb_in22k_ft_in1k_384\s+384px\s+1000 classes\s+28\.6M params\s+MIT/);
    const none = run(['models', 'resnet*']);
    expect(none.code).to.equal(1);
    expect(none.stderr).to.equal("no architectures or pretrained tags match 'resnet*'\n");
    expect(run(['--help']).stdout).to.match(/\n\s+models \[options\] \[pattern\]/);
  });

  it('info takes a pretrained tag or a converted model directory, and an unknown name points at convnext models', () => {
    const tag = JSON.parse(run(['info', 'convnext_tiny.fb_in22k', '--json']).stdout);
    expect(tag).to.deep.include({ name: 'convnext_tiny', tag: 'convnext_tiny.fb_in22k', num_classes: 21841 });
    expect(tag.pretrained).to.deep.include({ input_size: 224, license: 'MIT', url: 'https://dl.fbaipublicfiles.com/convnext/convnext_tiny_22k_224.pth' });
    const out = tmp('v2dir');
    expect(run(['convert', path.join(PARITY, 'convnextv2_test_1k_224_ema.pt'), out]).code).to.equal(0);
    const dir = JSON.parse(run(['info', out, '--json']).stdout);
    expect(dir).to.deep.include({ version: 2, num_classes: 10, dir: out, storage: 'float32' });
    expect(dir.source).to.deep.include({ layout: 'official' });
    expect(run(['info', out]).stdout).to.match(/directory\s+.*v2dir/);
    const bad = run(['info', 'convnext_tinny.fb_in1k']);
    expect(bad.code).to.equal(1);
    noStack(bad);
    expect(bad.stderr).to.match(
      /^error: unknown model 'convnext_tinny\.fb_in1k' \(did you mean convnext_tiny\.fb_in1k.*\): not an architecture, a pretrained tag or a model directory; `convnext models` lists them\n$/,
    );
    expect(bad.stderr).to.not.include('listModels()');
  });

  it('train lists every missing required option at once and shows the defaults in --help', () => {
    const r = run(['train']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(
      'error: missing required options: --data <dir>, --arch <name>, --epochs <n> (convnext train --help shows every option with its default)\n',
    );
    expect(run(['train', '--data', 'x', '--epochs', '1']).stderr).to.match(/^error: missing required option: --arch <name> /);
    const help = run(['train', '--help']).stdout.replace(/\s+/g, ' ');
    expect(help).to.include('--image-size <n> training resolution, 32-2048 (default: 224)');
    expect(help).to.include('--batch-size <n> images per step (default: 32)');
    expect(help).to.include('--lr <lr> peak learning rate (default: the ConvNeXt recipe scaled to the batch: 4e-3 x batch/4096');
    expect(help).to.include('(default: runs/<UTC timestamp>)');
    expect(help).to.include('--smoothing <f> label smoothing (default: 0.1)');
  });

  it('train without a validation set says so instead of NaN%, with the defaults it chose', () => {
    const data = tmp('data');
    for (const [c, v] of [
      ['cats', 40],
      ['dogs', 200],
    ] as const) {
      fs.mkdirSync(path.join(data, c), { recursive: true });
      for (let i = 0; i < 3; i++) {
        const img: RgbImage = { width: 36, height: 36, data: new Uint8Array(36 * 36 * 3).map((_, k) => (v + 13 * i + k) & 255) };
        fs.writeFileSync(path.join(data, c, `${i}.png`), encodePng(img));
      }
    }
    const out = tmp('run');
    const r = run(['train', '--data', data, '--arch', 'convnext_atto', '--epochs', '1', '--image-size', '32', '--batch-size', '6', '--out', out]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.not.include('NaN');
    expect(r.stderr).to.match(
      /training convnext_atto on wasm( x \d+ workers)? into .*run \(batch 6, lr 5\.859e-6, size 32\): 6 train \/ no validation set, 2 classes/,
    );
    expect(r.stderr).to.match(/epoch 1: loss [\d.]+ acc [\d.]+% \| no validation set \|/);
    expect(r.stdout).to.equal(`no validation set (use --val or --val-split to measure accuracy); model in ${path.join(out, 'model')}\n`);
  });

  it('preprocess and forward say what they wrote', () => {
    const x = tmp('x.npy');
    const p = run(['preprocess', path.join(IMAGES, 'chelsea.png'), '--output', x]);
    expect(p.code, p.stderr).to.equal(0);
    expect(p.stderr).to.equal(
      `wrote float32 NCHW [1, 3, 224, 224] to ${x} (${path.join(IMAGES, 'chelsea.png')} 338x225: resize 256 bicubic, centre crop 224, normalised)\n`,
    );
    expect(readNpyFloat32(x).shape).to.deep.equal([1, 3, 224, 224]);
    const y = tmp('y.npy');
    const f = run(['forward', '--model', path.join(PARITY, 'convnextv2_test_1k_224_ema.pt'), '--input', path.join(PARITY, 'input.npy'), '--output', y]);
    expect(f.code, f.stderr).to.equal(0);
    expect(f.stderr).to.equal(`wrote float32 logits [2, 10] to ${y}\n`);
  });
});
