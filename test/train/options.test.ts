/** Training options (src/train/options.ts): defaults from the recipe, one validation that names the option (issue 14). */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { defaultRunDir, recipeLr, validateTrainOptions, withTrainDefaults } from '../../src/train/options';
import { TrainOptionError } from '../../src/errors';
import { TrainOptions } from '../../src/train/trainer';

describe('train/options', () => {
  const base = (): TrainOptions => withTrainDefaults({ data: 'd', arch: 'convnext_atto', epochs: 3 });

  it('defaults: 224, batch 32, the recipe lr scaled to the batch (4e-3 @ 4096; fine-tuning 5e-5 @ 512), runs/<timestamp>', () => {
    const o = base();
    expect([o.imageSize, o.batchSize]).to.deep.equal([224, 32]);
    expect(o.lr).to.equal(3.125e-5);
    expect(withTrainDefaults({ data: 'd', arch: 'a', epochs: 1, init: 'convnext_tiny.fb_in1k' }).lr).to.equal(3.125e-6);
    expect(withTrainDefaults({ data: 'd', arch: 'a', epochs: 1, batchSize: 64, accumSteps: 2 }).lr).to.equal(recipeLr(128, false));
    expect(withTrainDefaults({ data: 'd', arch: 'a', epochs: 1, lr: 1e-3, out: 'x' })).to.include({ lr: 1e-3, out: 'x' });
    expect(defaultRunDir(new Date('2026-12-01T21:30:05.123Z'))).to.equal(path.join('runs', '2026-12-01T21-30-05'));
    expect(() => validateTrainOptions(base())).to.not.throw();
  });

  it('refuses out-of-range values with the option name and the rule', () => {
    const cases: [Partial<TrainOptions>, RegExp][] = [
      [{ labelSmoothing: -1 }, /^labelSmoothing must be in \[0, 1\), got -1$/],
      [{ labelSmoothing: 1 }, /^labelSmoothing must be in \[0, 1\)/],
      [{ imageSize: 100000 }, /^imageSize must be an integer from 32 to 2048, got 100000$/],
      [{ imageSize: 31 }, /^imageSize must be an integer from 32/],
      [{ batchSize: 0 }, /^batchSize must be an integer from 1 to 4096/],
      [{ lr: 0 }, /^lr must be a positive number, got 0$/],
      [{ lr: NaN }, /^lr must be a positive number, got null$/],
      [{ epochs: 1.5 }, /^epochs must be a positive integer/],
      [{ dropPathRate: 1 }, /^dropPathRate must be in \[0, 1\)/],
      [{ emaDecay: 1 }, /^emaDecay must be in \(0, 1\)/],
      [{ layerDecay: 0 }, /^layerDecay must be in \(0, 1\]/],
      [{ weightDecay: -0.1 }, /^weightDecay must be a number >= 0/],
      [{ minLr: 1 }, /^minLr must be at most lr/],
      [{ warmupEpochs: 5 }, /^warmupEpochs must be a number >= 0, below epochs/],
      [{ accumSteps: 0 }, /^accumSteps must be a positive integer/],
      [{ mixup: -1 }, /^mixup must be a number >= 0/],
      [{ valSplit: 1 }, /^valSplit must be in \(0, 1\)/],
      [{ freeze: 7 }, /^freeze must be 'head' or a number of stages 0-4/],
      [{ out: '' }, /^missing training option: out$/],
      [{ arch: '  ' }, /^arch must be a non-empty string/],
      [{ val: 'v', valSplit: 0.2 }, /^use either a val folder or valSplit, not both$/],
      [{ scale: [0, 1] }, /^scale must be \[min, max\] with 0 < min <= max <= 1 \(area fractions of the image\), got \[0,1\]$/],
      [{ scale: [0.5, 1.2] }, /^scale must be \[min, max\] with 0 < min <= max <= 1/],
      [{ scale: [0.6, 0.5] }, /^scale must be \[min, max\]/],
      [{ scale: [0.5] as unknown as [number, number] }, /^scale must be \[min, max\]/],
      [{ scale: [0.5, NaN] }, /^scale must be \[min, max\]/],
      [{ ratio: [0, 1] }, /^ratio must be \[min, max\] with 0 < min <= max \(aspect ratios, width \/ height\), got \[0,1\]$/],
      [{ ratio: [2, 1] }, /^ratio must be \[min, max\]/],
      [{ autoAugment: 'rand-m9-bogus' }, /^autoAugment must be 'none', 'trivial' or rand-m\{magnitude\}.*; got "rand-m9-bogus": section 'bogus' has no value$/],
      [
        { autoAugment: 'trivial', trivialAugment: false },
        /^trivialAugment must be absent \(deprecated: autoAugment replaces it\) or agree with autoAugment "trivial", got false$/,
      ],
    ];
    for (const [patch, re] of cases) {
      let err: unknown;
      try {
        validateTrainOptions({ ...base(), ...patch });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(patch)).to.be.instanceOf(TrainOptionError);
      expect((err as Error).message, JSON.stringify(patch)).to.match(re);
      expect((err as TrainOptionError).option).to.equal(Object.keys(patch).pop());
    }
  });

  it("autoAugment: 'none' by default (timm); the deprecated trivialAugment maps to 'trivial' / 'none'; scale and ratio default to torchvision's", () => {
    const o = base();
    expect(o.autoAugment).to.equal('none');
    expect(o.scale).to.deep.equal([0.08, 1]);
    expect(o.ratio).to.deep.equal([3 / 4, 4 / 3]);
    const w = (p: Partial<TrainOptions>) => withTrainDefaults({ data: 'd', arch: 'a', epochs: 1, ...p });
    expect(w({ trivialAugment: true }).autoAugment).to.equal('trivial');
    expect(w({ trivialAugment: false }).autoAugment).to.equal('none');
    expect(w({ autoAugment: 'rand-m9-mstd0.5-inc1' }).autoAugment).to.equal('rand-m9-mstd0.5-inc1');
    expect(w({ scale: [0.35, 1], ratio: [0.5, 2] })).to.deep.include({ scale: [0.35, 1], ratio: [0.5, 2] });
    for (const ok of [w({ trivialAugment: false }), w({ autoAugment: 'rand-m7-n3-mstd101-mmax20-inc0-p0.9' }), w({ scale: [1, 1], ratio: [1, 1] })])
      expect(() => validateTrainOptions(ok)).to.not.throw();
  });

  it('lists every missing option at once, and refuses an out path that is a file', () => {
    expect(() => validateTrainOptions({})).to.throw(TrainOptionError, /^missing training options: data, arch, epochs, imageSize, batchSize, lr, out$/);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-opts-'));
    try {
      const file = path.join(tmp, 'f');
      fs.writeFileSync(file, '');
      expect(() => validateTrainOptions({ ...base(), out: file })).to.throw(
        TrainOptionError,
        /^out must be a directory \(it is created if missing\), not an existing file/,
      );
      expect(() => validateTrainOptions({ ...base(), out: tmp })).to.not.throw();
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
