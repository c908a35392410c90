/**
 * Hostile image input (issue 14): extreme aspect ratios, headers that lie about the size, files
 * that are not regular files, links and loops in folders, decoder-internal error texts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { decodeImage, plainDecodeReason, MAX_IMAGE_PIXELS } from '../../src/data/decode';
import { RgbImage } from '../../src/data/image';
import { ImageError } from '../../src/errors';
import { resize, resizeWindow } from '../../src/data/resize';
import { centerCrop, evalResizeCrop, evalTransform, resizeShorterSide } from '../../src/data/transforms';
import { FileReadError, SkippedEntry, listFiles, readRegularFile } from '../../src/util/fs';
import { makeHostileFolder } from './hostile_images';
import { useTmpDir } from '../helpers';

function noise(width: number, height: number, seed = 1): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return { width, height, data };
}

async function refusal(p: Promise<unknown>): Promise<ImageError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(ImageError);
    return e as ImageError;
  }
  throw new Error('expected an ImageError');
}

describe('data/hostile input', function () {
  this.timeout(60_000);
  const tmp = useTmpDir('convnext-hostile-');

  describe('extreme aspect ratios', () => {
    it('resizeWindow equals the full resize cropped, bit for bit (shrink, enlarge, padding, one axis, bilinear)', () => {
      const cases: [RgbImage, number, number, [number, number, number, number]][] = [
        [noise(61, 37), 256, 155, [16, 0, 224, 155]],
        [noise(60, 1, 2), 15360, 256, [7568, 16, 224, 224]],
        [noise(1, 50, 3), 256, 12800, [16, 6288, 224, 224]],
        [noise(300, 200, 4), 120, 80, [-10, -5, 140, 90]], // window larger than the image: black padding
        [noise(50, 40, 5), 50, 97, [3, 10, 40, 60]], // vertical only
        [noise(50, 40, 6), 93, 40, [7, 2, 60, 30]], // horizontal only
      ];
      for (const [img, w, h, [left, top, ww, wh]] of cases) {
        for (const interpolation of ['bicubic', 'bilinear'] as const) {
          const full = resize(img, w, h, { interpolation });
          const win = resizeWindow(img, w, h, { left, top, width: ww, height: wh }, { interpolation });
          const expected = new Uint8Array(ww * wh * 3);
          for (let y = 0; y < wh; y++) {
            for (let x = 0; x < ww; x++) {
              const sx = x + left;
              const sy = y + top;
              if (sx < 0 || sy < 0 || sx >= w || sy >= h) continue;
              for (let c = 0; c < 3; c++) expected[(y * ww + x) * 3 + c] = full.data[(sy * w + sx) * 3 + c];
            }
          }
          expect(Buffer.from(win.data).equals(Buffer.from(expected)), `${img.width}x${img.height} -> ${w}x${h} ${interpolation}`).to.equal(true);
        }
      }
    });

    it('evalResizeCrop equals resize-then-centerCrop, and a 100000 x 1 strip gives its 224 x 224 crop', () => {
      for (const img of [noise(60, 1), noise(1, 47), noise(338, 225), noise(20, 20)]) {
        const ref = centerCrop(resizeShorterSide(img, 256), 224, 224);
        expect(Buffer.from(evalResizeCrop(img).data).equals(Buffer.from(ref.data))).to.equal(true);
      }
      // Resized to 25,600,000 x 256 (19.7 GB): only the crop is built. Its columns all sample the
      // same source pixel region, a gradient along x: every row of the crop is the same.
      const strip = noise(100000, 1, 9);
      const out = evalResizeCrop(strip);
      expect([out.width, out.height]).to.deep.equal([224, 224]);
      const row0 = Buffer.from(out.data.subarray(0, 224 * 3));
      for (let y = 1; y < 224; y++) expect(Buffer.from(out.data.subarray(y * 224 * 3, (y + 1) * 224 * 3)).equals(row0)).to.equal(true);
      // The crop's centre column comes from source pixels 49999/50000: the bicubic of the middle.
      const mid = resizeWindow(strip, 25_600_000, 256, { left: 12_799_888, top: 16, width: 224, height: 224 });
      expect(Buffer.from(mid.data).equals(Buffer.from(out.data))).to.equal(true);
      const x = evalTransform(noise(1, 100000, 10));
      expect(x.shape).to.deep.equal([1, 224, 224, 3]);
      expect(x.data.every(Number.isFinite)).to.equal(true);
    });

    it('resize refuses an output too large to build, with a reason, instead of a RangeError', () => {
      expect(() => resize(noise(100000, 1), 25_600_000, 256)).to.throw(ImageError, /too large to build .* resizeWindow/);
    });
  });

  describe('the hostile folder', () => {
    it('every good file decodes; every bad one is refused with its plain reason; the walk names every skip', async () => {
      const f = makeHostileFolder(tmp('folder'));
      const skipped: SkippedEntry[] = [];
      const files = listFiles(f.dir, ['.png', '.jpg', '.gif', '.bmp'], (s) => skipped.push(s));
      for (const g of f.good) expect(files, g).to.include(g);
      const named = new Set<string>();
      for (const s of skipped) {
        const why = f.bad.get(s.path);
        expect(why, `unexpected skip ${s.path}: ${s.reason}`).to.not.equal(undefined);
        expect(s.reason).to.match(why!);
        named.add(s.path);
      }
      for (const file of files) {
        const why = f.bad.get(file);
        if (why === undefined) {
          const img = await decodeImage(file);
          expect(img.width * img.height).to.be.above(0);
          evalTransform(img); // extreme aspect ratios included
        } else {
          const e = await refusal(decodeImage(file));
          expect(e.message).to.match(why);
          expect(e.message.startsWith(`image ${file}: `)).to.equal(true);
          expect(e.message, 'no decoder internals in the message').to.not.match(
            /have should not go down|Cannot read properties|out of range|Invalid typed array/,
          );
          named.add(file);
        }
      }
      expect(
        [...f.bad.keys()].filter((b) => !named.has(b)),
        'bad entries nobody named',
      ).to.deep.equal([]);
    });
  });

  describe('regular files only', () => {
    it('/dev/zero, a link to it and a FIFO are refused by name, without reading or hanging', async () => {
      const fifo = tmp('pipe.png');
      require('child_process').execFileSync('mkfifo', [fifo]);
      const zero = tmp('zero.png');
      fs.symlinkSync('/dev/zero', zero);
      expect((await refusal(decodeImage('/dev/zero'))).message).to.equal('image /dev/zero: is a character device, not a regular file');
      expect((await refusal(decodeImage(zero))).message).to.equal(`image ${zero}: is a character device, not a regular file`);
      expect((await refusal(decodeImage(fifo))).message).to.equal(`image ${fifo}: is a FIFO (named pipe), not a regular file`);
      expect((await refusal(decodeImage(tmp()))).message).to.match(/is a directory/);
      expect((await refusal(decodeImage(tmp('nope.png')))).message).to.match(/no such file$/);
    });

    it('readRegularFile reads a file whole and caps what it reads', async () => {
      const file = tmp('ten.bin');
      fs.writeFileSync(file, Buffer.from('0123456789'));
      expect((await readRegularFile(file)).toString()).to.equal('0123456789');
      let err: unknown;
      await readRegularFile(file, 5).catch((e) => (err = e));
      expect(err).to.be.instanceOf(FileReadError);
      expect((err as FileReadError).reason).to.equal('is 10 bytes, over the limit of 5');
    });
  });

  describe('directory walks', () => {
    it('follow links to files and directories, name loops, broken links and special files, list a folder once', () => {
      const d = tmp('walk');
      fs.mkdirSync(path.join(d, 'real'), { recursive: true });
      fs.writeFileSync(path.join(d, 'real', 'a.png'), 'x');
      fs.writeFileSync(path.join(d, 'notes.txt'), 'x');
      fs.symlinkSync(path.join(d, 'real', 'a.png'), path.join(d, 'link.png'));
      fs.symlinkSync(path.join(d, 'real'), path.join(d, 'alias'));
      fs.symlinkSync(d, path.join(d, 'real', 'loop'));
      fs.symlinkSync(path.join(d, 'gone.png'), path.join(d, 'dangling.png'));
      const skipped: SkippedEntry[] = [];
      const files = listFiles(d, ['.png'], (s) => skipped.push(s));
      expect(files.map((f) => path.relative(d, f))).to.deep.equal(['alias/a.png', 'link.png']);
      expect(skipped.map((s) => [path.relative(d, s.path), s.kind, s.reason.replace(d, 'D')])).to.deep.equal([
        ['alias/loop', 'link', 'symbolic link loop (leads back to D)'],
        ['dangling.png', 'link', `broken symbolic link (to ${path.join('D', 'gone.png')})`],
        ['notes.txt', 'extension', 'not an image file extension'],
        ['real', 'link', `same directory as ${path.join('D', 'alias')}, already listed`],
      ]);
    });
  });

  describe('limits and reasons', () => {
    it('maxImagePixels (default Pillow MAX_IMAGE_PIXELS) is checked from the header', async () => {
      expect(MAX_IMAGE_PIXELS).to.equal(89_478_485);
      const png = path.resolve(__dirname, '../../../test/fixtures/images/chelsea.png');
      const e = await refusal(decodeImage(png, { maxImagePixels: 338 * 225 - 1 }));
      expect(e.message).to.equal(
        `image ${png}: too large: 338 x 225 pixels is over the limit of 76049 pixels (maxImagePixels, default Pillow's MAX_IMAGE_PIXELS 89478485)`,
      );
      expect((await decodeImage(png, { maxImagePixels: 338 * 225 })).width).to.equal(338);
      await refusal(decodeImage(png, { maxImagePixels: 0 })).then((r) => expect(r.message).to.match(/^maxImagePixels must be a positive number/));
    });

    it('decoder-internal texts become plain reasons', () => {
      expect(plainDecodeReason('png', 'have should not go down')).to.equal('truncated or corrupt PNG: the image data ends early');
      expect(plainDecodeReason('bmp', 'The value of "offset" is out of range. It must be >= 0 and <= 10. Received 54')).to.equal(
        'truncated or corrupt BMP: the image data ends early',
      );
      expect(plainDecodeReason('tiff', "Cannot read properties of undefined (reading '0')")).to.equal('corrupt TIFF: the decoder could not read it');
      expect(plainDecodeReason('png', 'Crc error - 1 - 2')).to.match(/^corrupt PNG: a chunk is damaged/);
      expect(plainDecodeReason('png', 'Unsupported interlace method')).to.equal('unsupported PNG variant (Unsupported interlace method)');
      expect(plainDecodeReason('png', 'incorrect header check')).to.equal('corrupt PNG: the compressed image data is damaged');
    });
  });
});
