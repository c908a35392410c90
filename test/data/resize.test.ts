/**
 * resize against Pillow's Image.resize (test/fixtures/images/resize_cases.json, made by
 * test/data/make_preprocess_fixtures.py): bit-exact, up and down, with a fractional box; and its speed.
 */
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import seedrandom from 'seedrandom';
import { RgbImage, resize } from '../../src/data';
import { ImageError } from '../../src/errors';

const IMAGES = path.resolve(__dirname, '../../../test/fixtures/images');

interface Case {
  interpolation: 'bicubic' | 'bilinear';
  width: number;
  height: number;
  box: [number, number, number, number] | null;
  rgb: string;
}

function randomImage(width: number, height: number, seed: string): RgbImage {
  const rng = seedrandom(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rng() * 256);
  return { width, height, data };
}

describe('data/resize', () => {
  const fx = JSON.parse(fs.readFileSync(path.join(IMAGES, 'resize_cases.json'), 'utf8')) as { width: number; height: number; rgb: string; cases: Case[] };
  const src: RgbImage = { width: fx.width, height: fx.height, data: new Uint8Array(Buffer.from(fx.rgb, 'base64')) };

  for (const c of fx.cases) {
    const what = `${c.interpolation} ${fx.width}x${fx.height} -> ${c.width}x${c.height}${c.box ? ` box [${c.box.join(', ')}]` : ''}`;
    it(`equals PIL Image.resize: ${what}`, () => {
      const out = resize(src, c.width, c.height, { interpolation: c.interpolation, box: c.box ?? undefined });
      expect([out.width, out.height]).to.deep.equal([c.width, c.height]);
      expect(Buffer.from(out.data).equals(Buffer.from(c.rgb, 'base64')), 'pixels differ').to.equal(true);
    });
  }

  it('returns a copy, unfiltered, when nothing changes (as PIL does)', () => {
    const out = resize(src, src.width, src.height);
    expect(out.data).to.not.equal(src.data);
    expect(Buffer.from(out.data).equals(Buffer.from(src.data))).to.equal(true);
  });

  it('keeps a flat image flat, up and down', () => {
    const flat: RgbImage = { width: 40, height: 30, data: new Uint8Array(40 * 30 * 3).fill(200) };
    for (const [w, h] of [
      [7, 9],
      [97, 61],
      [40, 3],
    ]) {
      const out = resize(flat, w, h);
      expect(out.data.every((v) => v === 200)).to.equal(true);
    }
  });

  it('without antialias, shrinking only reads a few pixels (aliasing)', () => {
    // A 1-pixel checkerboard: the antialiased result is uniform grey; plain bicubic keeps stripes.
    const w = 400;
    const h = 300;
    const data = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.fill((x + y) % 2 ? 255 : 0, (y * w + x) * 3, (y * w + x) * 3 + 3);
    const spread = (img: RgbImage): number => Math.max(...img.data) - Math.min(...img.data);
    expect(spread(resize({ width: w, height: h, data }, 57, 43))).to.be.at.most(2);
    expect(spread(resize({ width: w, height: h, data }, 57, 43, { antialias: false }))).to.be.above(60);
  });

  it('validates its arguments', () => {
    expect(() => resize(src, 0, 5)).to.throw(ImageError, 'positive integers');
    expect(() => resize(src, 5.5, 5)).to.throw(ImageError, 'positive integers');
    expect(() => resize(src, 5, 5, { box: [0, 0, 24, 17] })).to.throw(ImageError, 'within the 23 x 17 image');
    expect(() => resize(src, 5, 5, { box: [5, 5, 5, 9] })).to.throw(ImageError, 'positive size');
    expect(() => resize(src, 5, 5, { interpolation: 'lanczos' as 'bicubic' })).to.throw(ImageError, "unknown interpolation 'lanczos'");
    expect(() => resize({ width: 2, height: 2, data: new Uint8Array(11) }, 1, 1)).to.throw(ImageError, 'expected 2 x 2 x 3 = 12');
  });

  it('shrinks a 2000x1500 photo-sized image to a 256 shorter side in well under a second', () => {
    const img = randomImage(2000, 1500, 'big');
    resize(img, 341, 256); // warm up the JIT
    const runs: number[] = [];
    for (let k = 0; k < 3; k++) {
      const t0 = process.hrtime.bigint();
      resize(img, 341, 256);
      runs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const best = Math.min(...runs);
    console.log(`      2000x1500 -> 341x256 bicubic: ${runs.map((r) => r.toFixed(0)).join(', ')} ms (best ${best.toFixed(0)} ms)`);
    expect(best).to.be.below(500);
  });
});
