/**
 * Automatic augmentation (issue 11, part 3): the Pillow pixel ops against Pillow's own outputs
 * (test/fixtures/augment/pillow_ops.json, from make_augment_fixtures.py) and hand-computed pixels,
 * timm's RandAugment policy grammar and magnitude rules, and RandomResizedCrop's scale/ratio bounds.
 */
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import seedrandom from 'seedrandom';
import { RgbImage } from '../../src/data/image';
import { resize } from '../../src/data/resize';
import { TrainOptionError } from '../../src/errors';
import { randomResizedCropParams, trainTransform, trivialAugment } from '../../src/train/augment';
import * as ops from '../../src/train/image_ops';
import {
  RAND_AUGMENT_FILL,
  RAND_AUGMENT_INCREASING_OPS,
  RAND_AUGMENT_OPS,
  RandAugmentPolicy,
  applyRandAugmentOp,
  parseAutoAugment,
  randAugment,
  randAugmentArg,
  sampleMagnitude,
} from '../../src/train/rand_augment';

const FIXTURE = path.resolve(__dirname, '../../../test/fixtures/augment/pillow_ops.json');

interface PillowCase {
  op: string;
  arg: number;
  resample: ops.AffineResample | null;
  out: string;
}

const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));

function image(w: number, h: number, f: (x: number, y: number, c: number) => number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = f(x, y, c);
  return { width: w, height: h, data };
}

const px = (img: RgbImage, x: number, y: number) => Array.from(img.data.slice((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

/** The op a fixture case names, on our side. */
function apply(img: RgbImage, c: PillowCase): RgbImage {
  const r = c.resample ?? 'bicubic';
  const fill = RAND_AUGMENT_FILL;
  switch (c.op) {
    case 'luma': {
      const l = ops.luma(img);
      return { ...img, data: Uint8Array.from({ length: img.data.length }, (_, i) => l[(i / 3) | 0]) };
    }
    case 'smooth':
      return { ...img, data: ops.smooth(img) };
    case 'shearX':
      return ops.affineTransform(img, [1, c.arg, 0, 0, 1, 0], r, fill);
    case 'shearY':
      return ops.affineTransform(img, [1, 0, 0, c.arg, 1, 0], r, fill);
    case 'translateX':
      return ops.affineTransform(img, [1, 0, c.arg * img.width, 0, 1, 0], r, fill);
    case 'translateY':
      return ops.affineTransform(img, [1, 0, 0, 0, 1, c.arg * img.height], r, fill);
    case 'rotate':
      return ops.rotate(img, c.arg, r, fill);
    case 'autocontrast':
    case 'equalize':
    case 'invert':
      return ops[c.op](img);
    case 'posterize':
    case 'solarize':
    case 'solarizeAdd':
    case 'brightness':
    case 'color':
    case 'contrast':
    case 'sharpness':
      return ops[c.op](img, c.arg);
    default:
      throw new Error(`fixture op ${c.op}`);
  }
}

describe('augmentation pixel ops equal Pillow', () => {
  const doc = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as {
    fill: number[];
    images: Record<string, { width: number; height: number; data: string; cases: PillowCase[] }>;
  };

  it("timm's fill is the ImageNet mean in bytes", () => {
    expect(Array.from(RAND_AUGMENT_FILL)).to.deep.equal(doc.fill);
    expect(Array.from(RAND_AUGMENT_FILL)).to.deep.equal([124, 116, 104]);
  });

  for (const [name, im] of Object.entries(doc.images)) {
    it(`every op on the '${name}' image, bit for bit (${im.cases.length} cases)`, () => {
      const img: RgbImage = { width: im.width, height: im.height, data: bytes(im.data) };
      const bad: string[] = [];
      for (const c of im.cases) {
        const want = bytes(c.out);
        const got = apply(img, c).data;
        let diff = 0;
        let worst = 0;
        for (let i = 0; i < want.length; i++)
          if (want[i] !== got[i]) {
            diff++;
            worst = Math.max(worst, Math.abs(want[i] - got[i]));
          }
        if (diff) bad.push(`${c.op}(${c.arg}${c.resample ? `, ${c.resample}` : ''}): ${diff} bytes differ, by up to ${worst}`);
      }
      expect(bad, bad.join('\n')).to.deep.equal([]);
    });
  }
});

describe('augmentation pixel ops, hand-computed', () => {
  const fill = RAND_AUGMENT_FILL;
  const grid = image(4, 4, (x, y, c) => 10 * (y * 4 + x) + c);

  it('posterize keeps the high bits, solarize inverts from the threshold, solarizeAdd adds below 128', () => {
    const one = image(1, 1, (_x, _y, c) => [0b10110111, 127, 200][c]);
    expect(px(ops.posterize(one, 3), 0, 0)).to.deep.equal([0b10100000, 0b01100000, 0b11000000]);
    expect(px(ops.posterize(one, 0), 0, 0)).to.deep.equal([0, 0, 0]);
    expect(px(ops.posterize(one, 8), 0, 0)).to.deep.equal([0b10110111, 127, 200]);
    expect(px(ops.solarize(one, 128), 0, 0)).to.deep.equal([255 - 0b10110111, 127, 55]);
    expect(px(ops.solarize(one, 256), 0, 0)).to.deep.equal([0b10110111, 127, 200]);
    expect(px(ops.solarizeAdd(one, 110), 0, 0)).to.deep.equal([0b10110111, 237, 200]);
  });

  it('autocontrast stretches each channel to 0-255 (truncating); equalize flattens the histogram', () => {
    const ramp = image(3, 1, (x) => [50, 100, 150][x]);
    // scale 255/100, offset -127.5: 100 -> int(127.5) = 127
    expect(Array.from(ops.autocontrast(ramp).data)).to.deep.equal([0, 0, 0, 127, 127, 127, 255, 255, 255]);
    // 4 pixels valued 10, 20, 30, 40: step = (4 - 1) / 255 -> 0 -> unchanged (Pillow's rule)
    const four = image(4, 1, (x) => 10 * (x + 1));
    expect(Array.from(ops.equalize(four).data)).to.deep.equal(Array.from(four.data));
    // 510 pixels, half 0 and half 1: step = (510 - 255) / 255 = 1 -> lut[0] = 0, lut[1] = 255
    const two = image(510, 1, (x) => (x < 255 ? 0 : 1));
    const eq = ops.equalize(two);
    expect([eq.data[0], eq.data[3 * 300]]).to.deep.equal([0, 255]);
  });

  it('rotate 90 is an exact turn (counter-clockwise) with either filter', () => {
    for (const r of ['bilinear', 'bicubic'] as const) {
      const out = ops.rotate(grid, 90, r, fill);
      for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) expect(px(out, x, y)).to.deep.equal(px(grid, 3 - y, x));
    }
  });

  it('translate by whole pixels shifts and fills the uncovered side with the fill colour', () => {
    // timm's TranslateXRel pct 0.25 of width 4: the source of x is x + 1
    const out = ops.affineTransform(grid, [1, 0, 0.25 * 4, 0, 1, 0], 'bicubic', fill);
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 3; x++) expect(px(out, x, y)).to.deep.equal(px(grid, x + 1, y));
      expect(px(out, 3, y)).to.deep.equal([124, 116, 104]);
    }
    const up = ops.affineTransform(grid, [1, 0, 0, 0, 1, -2], 'bilinear', fill);
    expect(px(up, 1, 0)).to.deep.equal([124, 116, 104]);
    expect(px(up, 1, 3)).to.deep.equal(px(grid, 1, 1));
  });

  it('shear is about the origin (Pillow), not the centre: row 0 barely moves, the last row is filled at one end', () => {
    const flat = image(8, 8, () => 200);
    const out = ops.affineTransform(flat, [1, 0.3, 0, 0, 1, 0], 'bilinear', fill);
    expect(px(out, 0, 0)).to.deep.equal([200, 200, 200]); // source x = 0.5 + 0.15
    expect(px(out, 7, 7)).to.deep.equal([124, 116, 104]); // source x = 7.5 + 0.3 * 7.5 > 8
    expect(px(out, 0, 7)).to.deep.equal([200, 200, 200]);
  });
});

describe("timm's RandAugment", () => {
  const rand = (s: string) => parseAutoAugment(s) as RandAugmentPolicy;

  it("parses timm's config strings, with timm's defaults for the sections left out", () => {
    expect(parseAutoAugment('none')).to.deep.equal({ kind: 'none' });
    expect(parseAutoAugment('trivial')).to.deep.equal({ kind: 'trivial' });
    const p = rand('rand-m9-mstd0.5-inc1');
    expect(p).to.deep.include({ kind: 'rand', magnitude: 9, numOps: 2, magnitudeStd: 0.5, magnitudeMax: 10, increasing: true, prob: 0.5 });
    expect(p.ops).to.equal(RAND_AUGMENT_INCREASING_OPS);
    expect(rand('rand')).to.deep.include({ magnitude: 10, numOps: 2, magnitudeStd: 0, increasing: false, prob: 0.5 });
    expect(rand('rand').ops).to.equal(RAND_AUGMENT_OPS);
    expect(rand('rand-n3-p1-m7-mmax20-inc0-mstd101')).to.deep.include({
      magnitude: 7,
      numOps: 3,
      prob: 1,
      magnitudeMax: 20,
      increasing: false,
      magnitudeStd: Infinity,
    });
    expect(rand('rand-m9-mstd0.5-inc1')).to.equal(p); // memoised
  });

  it('refuses a bad string with the valid forms and the problem', () => {
    const cases: [string, RegExp][] = [
      ['rand-m9-x3', /unknown section 'x3'$/],
      ['rand-m9.5', /m must be an integer magnitude, got '9.5'$/],
      ['rand-n0', /n must be a positive integer, got '0'$/],
      ['rand-inc2', /inc must be 0 or 1, got '2'$/],
      ['rand-p1.5', /p must be in \[0, 1\], got '1.5'$/],
      ['rand-mstd', /section 'mstd' has no value$/],
      ['rand-M9', /unknown section 'M9'$/],
      ['rand-m9-m8', /section 'm' given twice$/],
      ['rand--m9', /an empty section$/],
      ['rand-tweights', /transform sets \('tweights'\) are not supported$/],
      ['augmix-m5', /unknown policy 'augmix'$/],
      ['Trivial', /unknown policy 'Trivial'$/],
      ['', /unknown policy ''$/],
    ];
    for (const [s, re] of cases) {
      let err: unknown;
      try {
        parseAutoAugment(s);
      } catch (e) {
        err = e;
      }
      expect(err, s).to.be.instanceOf(TrainOptionError);
      expect((err as TrainOptionError).option).to.equal('autoAugment');
      const msg = (err as Error).message;
      expect(msg, s).to.match(re);
      expect(msg).to.match(
        /^autoAugment must be 'none', 'trivial' or rand-m\{magnitude\}\[-n\{num_ops\}\]\[-mstd\{std\}\]\[-mmax\{max\}\]\[-inc\{0\|1\}\]\[-p\{prob\}\] \(e\.g\. rand-m9-mstd0\.5-inc1\); got /,
      );
    }
  });

  it('magnitude noise: none at mstd0, Gaussian with mstd, clipped to [0, mmax]; uniform in [0, m] above mstd100', () => {
    const rng = seedrandom('mag');
    expect(sampleMagnitude(rand('rand-m9'), rng)).to.equal(9);
    const draw = (s: string, n = 4000) => Array.from({ length: n }, () => sampleMagnitude(rand(s), rng));
    const stats = (v: number[]) => {
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      return { mean, std: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length), min: Math.min(...v), max: Math.max(...v) };
    };
    const g = stats(draw('rand-m5-mstd0.5'));
    expect(g.mean).to.be.closeTo(5, 0.05);
    expect(g.std).to.be.closeTo(0.5, 0.03);
    const clipped = draw('rand-m9-mstd3');
    expect(Math.max(...clipped)).to.equal(10);
    expect(clipped.filter((m) => m === 10).length / clipped.length).to.be.closeTo(0.37, 0.04); // P(N(9, 3) > 10)
    expect(Math.max(...draw('rand-m9-mstd3-mmax20'))).to.be.above(10);
    expect(Math.min(...draw('rand-m1-mstd3'))).to.equal(0);
    const u = stats(draw('rand-m8-mstd101'));
    expect(u.mean).to.be.closeTo(4, 0.15);
    expect(u.min).to.be.at.least(0);
    expect(u.max).to.be.below(8);
  });

  it("op arguments follow timm's level rules; the increasing variants grow in severity with the magnitude", () => {
    const zero = () => 0; // rng() > 0.5 is false: no negation
    const one = () => 0.99; // negated
    const arg = (name: string, m: number, r = zero) => randAugmentArg(name, m, r);
    expect([arg('Posterize', 0), arg('Posterize', 5), arg('Posterize', 10)]).to.deep.equal([0, 2, 4]);
    expect([arg('PosterizeIncreasing', 0), arg('PosterizeIncreasing', 9), arg('PosterizeIncreasing', 10)]).to.deep.equal([4, 1, 0]);
    expect([arg('Solarize', 0), arg('Solarize', 9), arg('Solarize', 10)]).to.deep.equal([0, 230, 256]);
    expect([arg('SolarizeIncreasing', 0), arg('SolarizeIncreasing', 9), arg('SolarizeIncreasing', 10)]).to.deep.equal([256, 26, 0]);
    expect([arg('SolarizeAdd', 9), arg('SolarizeAdd', 10)]).to.deep.equal([99, 110]);
    expect(arg('Color', 0)).to.be.closeTo(0.1, 1e-12);
    expect(arg('Color', 9)).to.be.closeTo(1.72, 1e-12);
    expect(arg('ColorIncreasing', 0)).to.equal(1);
    expect(arg('ContrastIncreasing', 9)).to.be.closeTo(1.81, 1e-12);
    expect(arg('BrightnessIncreasing', 9, one)).to.be.closeTo(0.19, 1e-12);
    expect(arg('SharpnessIncreasing', 20, one)).to.equal(0.1); // kept >= 0.1
    expect([arg('Rotate', 10), arg('Rotate', 10, one)]).to.deep.equal([30, -30]);
    expect(arg('ShearX', 9, one)).to.be.closeTo(-0.27, 1e-12);
    expect(arg('TranslateYRel', 10)).to.be.closeTo(0.45, 1e-12);
    expect(arg('AutoContrast', 9)).to.equal(0);
    expect(RAND_AUGMENT_OPS).to.have.length(15);
    expect(RAND_AUGMENT_INCREASING_OPS).to.include.members([
      'PosterizeIncreasing',
      'SolarizeIncreasing',
      'ColorIncreasing',
      'ContrastIncreasing',
      'SolarizeAdd',
      'Invert',
    ]);
    expect(RAND_AUGMENT_INCREASING_OPS).to.not.include('Posterize');
    for (const name of RAND_AUGMENT_INCREASING_OPS)
      expect(
        applyRandAugmentOp(
          image(5, 4, (x, y, c) => 40 * x + 9 * y + c),
          name,
          arg(name, 9),
        ).data,
      ).to.have.length(60);
  });

  it('is seeded by the sample rng; p0 leaves the image alone; ops vary with the seed', () => {
    const img = image(12, 10, (x, y, c) => (23 * x + 41 * y + 70 * c) & 255);
    const p = rand('rand-m9-mstd0.5-inc1');
    const a = randAugment(img, seedrandom('s1'), p);
    expect(Array.from(a.data)).to.deep.equal(Array.from(randAugment(img, seedrandom('s1'), p).data));
    expect(randAugment(img, seedrandom('s1'), rand('rand-m9-p0')).data).to.equal(img.data);
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) seen.add(Buffer.from(randAugment(img, seedrandom(`v${i}`), rand('rand-m9-n1-p1')).data).toString('base64'));
    expect(seen.size).to.be.greaterThan(12);
  });
});

describe('train transform: --aa and RandomResizedCrop --scale/--ratio', () => {
  const img = image(40, 30, (x, y, c) => (x * 6 + y * 3 + c * 50) & 255);

  it("autoAugment picks the policy ('none' by default; the deprecated trivialAugment still maps)", () => {
    const run = (o: object) => Array.from(trainTransform(img, seedrandom('t'), { size: 24, ...o }).data);
    const none = run({});
    expect(run({ autoAugment: 'none' })).to.deep.equal(none);
    expect(run({ trivialAugment: false })).to.deep.equal(none);
    expect(run({ trivialAugment: true })).to.deep.equal(run({ autoAugment: 'trivial' }));
    expect(run({ autoAugment: 'rand-m9-n3-p1' })).to.not.deep.equal(none);
    // trivial = the same crop and flip, then TrivialAugmentWide on the next draws
    const rng = seedrandom('t');
    const base = trainTransform(img, rng, { size: 24 });
    expect(run({ autoAugment: 'trivial' })).to.deep.equal(Array.from(trivialAugment(base, rng).data));
    expect(() => run({ autoAugment: 'rand-q1' })).to.throw(TrainOptionError, /unknown section 'q1'/);
  });

  it('crop area fractions stay inside scale and aspect ratios inside ratio, over many seeds', () => {
    const [W, H] = [200, 160];
    for (const [scale, ratio] of [
      [
        [0.3, 0.5],
        [3 / 4, 4 / 3],
      ],
      [
        [0.08, 1],
        [0.5, 2],
      ],
      [
        [0.5, 0.7],
        [1, 1],
      ],
    ] as [[number, number], [number, number]][]) {
      const rng = seedrandom(`crop-${scale}-${ratio}`);
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < 2000; i++) {
        const [top, left, h, w] = randomResizedCropParams(W, H, rng, scale, ratio);
        expect(top >= 0 && left >= 0 && top + h <= H && left + w <= W).to.equal(true);
        // the sides are rounded: allow half a pixel on each
        const tol = (w + h + 1) / (2 * W * H);
        const frac = (w * h) / (W * H);
        lo = Math.min(lo, frac);
        hi = Math.max(hi, frac);
        expect(frac, `${scale}`).to.be.within(scale[0] - tol, scale[1] + tol);
        const slack = 1.5 / Math.min(w, h);
        expect(w / h, `${ratio}`).to.be.within(ratio[0] * (1 - slack), ratio[1] * (1 + slack));
      }
      // the draws cover the range, not one corner of it
      expect(lo).to.be.below(scale[0] + 0.2 * (scale[1] - scale[0]));
      expect(hi).to.be.above(scale[1] - 0.2 * (scale[1] - scale[0]));
    }
  });

  it('scale and ratio reach the crop: scale [1, 1] at the image aspect is the whole image resized', () => {
    const whole = trainTransform(img, seedrandom('w'), { size: 24, scale: [1, 1], ratio: [40 / 30, 40 / 30], hflip: 0 });
    expect(Array.from(whole.data)).to.deep.equal(Array.from(resize(img, 24, 24, { interpolation: 'bicubic', box: [0, 0, 40, 30] }).data));
    const part = trainTransform(img, seedrandom('w'), { size: 24, scale: [0.1, 0.1], hflip: 0 });
    expect(Array.from(part.data)).to.not.deep.equal(Array.from(whole.data));
  });
});
