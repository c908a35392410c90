/**
 * `convnext train` flags of timm's train.py (issue 11, part 3): --aa none|trivial|rand-..., the
 * --no-trivial-augment alias, --scale/--ratio for RandomResizedCrop; and eval/predict/embed taking a
 * training run directory (its model/).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { Command } from 'commander';
import { buildProgram } from '../../src/cli/main';
import { autoAugmentFlag, pairFlag } from '../../src/cli/train';
import { RgbImage } from '../../src/data/image';
import { encodePng } from '../../src/data/png';
import { readNpyFloat32 } from '../../src/io/npy';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/convnext.js');

function run(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 170_000, env: { ...process.env, CONVNEXT_BACKEND: 'wasm' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The train command's parsed flags, without running it. */
async function parseTrain(args: string[]): Promise<Record<string, unknown>> {
  const program = buildProgram();
  const train = program.commands.find((c) => c.name() === 'train') as Command;
  let got: Record<string, unknown> = {};
  train.action((o: Record<string, unknown>) => {
    got = o;
  });
  await program.parseAsync(['train', ...args], { from: 'user' });
  return got;
}

describe('convnext train: --aa, --scale, --ratio', function () {
  this.timeout(180_000);
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-aug-cli-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('parses --aa, two-number --scale/--ratio, and --no-trivial-augment as --aa none', async () => {
    const o = await parseTrain(['--aa', 'rand-m9-mstd0.5-inc1', '--scale', '0.35', '1', '--ratio', '0.5', '2']);
    expect(o).to.deep.include({ aa: 'rand-m9-mstd0.5-inc1', scale: [0.35, 1], ratio: [0.5, 2], trivialAugment: true });
    expect(autoAugmentFlag(o)).to.equal('rand-m9-mstd0.5-inc1');
    const d = await parseTrain([]);
    expect([d.aa, d.scale, d.ratio]).to.deep.equal([undefined, undefined, undefined]); // the library's defaults apply
    expect(autoAugmentFlag(d)).to.equal(undefined);
    expect(autoAugmentFlag(await parseTrain(['--no-trivial-augment']))).to.equal('none');
    expect(autoAugmentFlag(await parseTrain(['--no-trivial-augment', '--aa', 'none']))).to.equal('none');
    expect(() => autoAugmentFlag({ aa: 'trivial', trivialAugment: false })).to.throw(/^--no-trivial-augment means --aa none; it contradicts --aa trivial$/);
    expect(pairFlag('--scale', [0.2, 0.9])).to.deep.equal([0.2, 0.9]);
    expect(() => pairFlag('--scale', [0.2, 0.5, 1])).to.throw(/^--scale takes two numbers, MIN MAX; got 3: 0.2 0.5 1$/);
  });

  it('bad values are one-line errors naming the flag, before anything loads; --help shows the defaults', () => {
    const base = ['train', '--data', path.join(tmp, 'nowhere'), '--arch', 'convnext_atto', '--epochs', '1'];
    const cases: [string[], RegExp][] = [
      [
        ['--aa', 'bogus'],
        /^error: --aa must be 'none', 'trivial' or rand-m\{magnitude\}.*\(e\.g\. rand-m9-mstd0\.5-inc1\); got "bogus": unknown policy 'bogus'\n$/,
      ],
      [['--aa', 'rand-m9-k2'], /^error: --aa must be .*; got "rand-m9-k2": unknown section 'k2'\n$/],
      [['--scale', '0.5'], /^error: --scale takes two numbers, MIN MAX; got 1: 0.5\n$/],
      [['--scale', '0', '1'], /^error: --scale must be \[min, max\] with 0 < min <= max <= 1 \(area fractions of the image\), got \[0,1\]\n$/],
      [['--ratio', '2', '1'], /^error: --ratio must be \[min, max\] with 0 < min <= max \(aspect ratios, width \/ height\), got \[2,1\]\n$/],
      [['--scale', 'a', '1'], /argument 'a' is invalid\. must be two numbers, MIN MAX/],
      [['--no-trivial-augment', '--aa', 'trivial'], /^error: --no-trivial-augment means --aa none; it contradicts --aa trivial\n$/],
    ];
    for (const [flags, re] of cases) {
      const r = run([...base, ...flags]);
      expect(r.code, flags.join(' ')).to.equal(1);
      expect(r.stderr, flags.join(' ')).to.match(re);
      expect(r.stderr).to.not.match(/\n\s+at /);
    }
    const help = run(['train', '--help']).stdout.replace(/\s+/g, ' ');
    expect(help).to.match(/--aa <policy> automatic augmentation, as timm's --aa: 'none', 'trivial' or rand-m\{magnitude\}.* \(default: none\)/);
    expect(help).to.include('--no-trivial-augment the same as --aa none');
    expect(help).to.include('--scale <range...> RandomResizedCrop area fraction range, two numbers MIN MAX in (0, 1] (default: 0.08 1)');
    expect(help).to.include('--ratio <range...> RandomResizedCrop aspect ratio range, two numbers MIN MAX (default: 0.75 1.3333)');
  });

  it('trains with RandAugment and a scale range; eval, predict and embed take the run directory', () => {
    const data = path.join(tmp, 'data');
    ['red', 'blue'].forEach((c, k) => {
      fs.mkdirSync(path.join(data, c), { recursive: true });
      for (let i = 0; i < 4; i++) {
        const img: RgbImage = { width: 40, height: 36, data: new Uint8Array(40 * 36 * 3).map((_, j) => (j % 3 === 2 * k ? 200 : 40) + ((7 * i + j) & 15)) };
        fs.writeFileSync(path.join(data, c, `${i}.png`), encodePng(img));
      }
    });
    const out = path.join(tmp, 'run');
    const t = run([
      'train',
      ...['--data', data, '--arch', 'convnext_atto', '--epochs', '1', '--image-size', '32', '--batch-size', '4', '--out', out],
      ...['--aa', 'rand-m9-mstd0.5-inc1', '--scale', '0.5', '1', '--ratio', '0.8', '1.25', '--json'],
    ]);
    expect(t.code, t.stderr).to.equal(0);
    expect(JSON.parse(t.stdout).model).to.equal(path.join(out, 'model'));

    const e = run(['eval', '--model', out, '--data', data, '--json', '--workers', '1']);
    expect(e.code, e.stderr).to.equal(0);
    const m = JSON.parse(e.stdout);
    expect(m.n).to.equal(8);
    expect(m.classes).to.deep.equal(['blue', 'red']);
    expect(m.top1).to.be.within(0, 1);

    const img = path.join(data, 'red', '0.png');
    const p = run(['predict', img, '--model', out, '--json', '--workers', '1']);
    expect(p.code, p.stderr).to.equal(0);
    const top = JSON.parse(p.stdout.trim()).top as { label: string; prob: number }[];
    expect(top.map((x) => x.label).sort()).to.deep.equal(['blue', 'red']);
    expect(top[0].prob + top[1].prob).to.be.closeTo(1, 1e-4);

    const npy = path.join(tmp, 'emb.npy');
    const b = run(['embed', img, '--model', out, '--output', npy, '--workers', '1']);
    expect(b.code, b.stderr).to.equal(0);
    expect(readNpyFloat32(npy).shape).to.deep.equal([1, 320]); // convnext_atto's pooled width
  });
});
