/**
 * decodeImage against PIL's Image.open(f).convert('RGB') (test/fixtures/images/variants, made by
 * test/data/make_preprocess_fixtures.py), and its errors.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { ConvNeXtError } from '../../src/errors';
import { decodeImage, sniffImageFormat } from '../../src/data';
import { ImageError } from '../../src/errors';

const IMAGES = path.resolve(__dirname, '../../../test/fixtures/images');
const VARIANTS = path.join(IMAGES, 'variants');

interface Expected {
  width: number;
  height: number;
  mode: string;
  exact: boolean;
  tolerance: number;
  rgb: string;
  pil_rgb?: string;
  note?: string;
}

async function expectImageError(p: Promise<unknown>, ...fragments: string[]): Promise<ImageError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, 'an error').to.be.instanceOf(ImageError);
  expect(err).to.be.instanceOf(ConvNeXtError);
  for (const f of fragments) expect((err as Error).message).to.include(f);
  return err as ImageError;
}

describe('data/decode', () => {
  const expected = JSON.parse(fs.readFileSync(path.join(VARIANTS, 'expected.json'), 'utf8')) as Record<string, Expected>;

  describe('matches PIL convert("RGB")', () => {
    for (const key of Object.keys(expected).sort()) {
      const e = expected[key];
      const [file, transform] = key.split(' ');
      const how = e.exact ? 'exactly' : `within ${e.tolerance} levels, 0.3 mean`;
      it(`${key} (PIL mode ${e.mode}) ${how}${e.note ? `: ${e.note}` : ''}`, async () => {
        const img = await decodeImage(path.join(VARIANTS, file), { exifOrientation: transform === 'exif_transpose' });
        expect([img.width, img.height]).to.deep.equal([e.width, e.height]);
        const want = Buffer.from(e.rgb, 'base64');
        expect(img.data.length).to.equal(want.length);
        if (e.exact) {
          expect(Buffer.from(img.data).equals(want), 'pixels differ').to.equal(true);
        } else {
          let max = 0;
          let sum = 0;
          for (let i = 0; i < want.length; i++) {
            const d = Math.abs(img.data[i] - want[i]);
            max = Math.max(max, d);
            sum += d;
          }
          // jpeg-js's own chroma replication and float colour conversion would give 0.5-1.2 here.
          expect(max, 'max |diff|').to.be.at.most(e.tolerance);
          expect(sum / want.length, 'mean |diff|').to.be.below(0.3);
        }
      });
    }
  });

  it('keeps the high byte of 16-bit gray where PIL clips it to 255 (documented divergence)', async () => {
    const e = expected['gray16.png'];
    const pil = Buffer.from(e.pil_rgb as string, 'base64');
    expect(pil.every((v) => v === 255)).to.equal(true);
    const img = await decodeImage(path.join(VARIANTS, 'gray16.png'));
    expect(Buffer.from(img.data).equals(Buffer.from(e.rgb, 'base64'))).to.equal(true);
  });

  it('drops alpha without compositing: fully transparent pixels keep their stored colour', async () => {
    const img = await decodeImage(path.join(VARIANTS, 'rgba8.png'));
    const opaque = await decodeImage(path.join(VARIANTS, 'rgb8.png'));
    expect(Buffer.from(img.data).equals(Buffer.from(opaque.data))).to.equal(true);
  });

  it('reads a Buffer, a Uint8Array and a path the same way', async () => {
    const file = path.join(IMAGES, 'rocket.jpg');
    const bytes = fs.readFileSync(file);
    const a = await decodeImage(file);
    const b = await decodeImage(bytes);
    const c = await decodeImage(new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));
    expect([a.width, a.height]).to.deep.equal([640, 427]);
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).to.equal(true);
    expect(Buffer.from(a.data).equals(Buffer.from(c.data))).to.equal(true);
  });

  it('ignores EXIF orientation unless asked, like PIL and timm', async () => {
    const file = path.join(VARIANTS, 'orient6.jpg');
    const plain = await decodeImage(file);
    const turned = await decodeImage(file, { exifOrientation: true });
    expect([plain.width, plain.height]).to.deep.equal([16, 12]);
    expect([turned.width, turned.height]).to.deep.equal([12, 16]);
  });

  it('sniffs formats from signatures', () => {
    const b = (s: string | number[]): Uint8Array => (typeof s === 'string' ? new Uint8Array(Buffer.from(s, 'latin1')) : new Uint8Array(s));
    expect(sniffImageFormat(b([0xff, 0xd8, 0xff, 0xe0]))).to.deep.equal({ format: 'jpeg' });
    expect(sniffImageFormat(b('\x89PNG\r\n\x1a\n'))).to.deep.equal({ format: 'png' });
    expect(sniffImageFormat(b('GIF89a'))).to.deep.equal({ format: 'gif' });
    expect(sniffImageFormat(b('BM\0\0'))).to.deep.equal({ format: 'bmp' });
    expect(sniffImageFormat(b('II*\0'))).to.deep.equal({ format: 'tiff' });
    expect(sniffImageFormat(b('RIFF\0\0\0\0WEBPVP8 '))).to.deep.equal({ unsupported: 'WebP' });
    expect(sniffImageFormat(b('\0\0\0\x1cftypheic'))).to.deep.equal({ unsupported: 'HEIF/HEIC' });
    expect(sniffImageFormat(b('\0\0\0\x1cftypavif'))).to.deep.equal({ unsupported: 'AVIF' });
  });

  describe('errors name the file and the reason', () => {
    it('no such file', async () => {
      const missing = path.join(os.tmpdir(), 'convnext-no-such-dir', 'x.jpg');
      await expectImageError(decodeImage(missing), `image ${missing}: no such file`);
    });

    it('a directory', async () => {
      await expectImageError(decodeImage(IMAGES), `image ${IMAGES}:`, 'directory');
    });

    it('empty input', async () => {
      await expectImageError(decodeImage(Buffer.alloc(0), { name: 'empty.png' }), 'image empty.png: empty file');
    });

    it('unsupported format', async () => {
      const webp = Buffer.concat([Buffer.from('RIFF\x10\0\0\0WEBPVP8 ', 'latin1'), Buffer.alloc(16)]);
      await expectImageError(decodeImage(webp, { name: 'a.webp' }), 'image a.webp: unsupported format WebP');
      await expectImageError(decodeImage(Buffer.from('hello, world')), 'image <buffer>: unsupported format unknown (first bytes 68 65 6c');
    });

    it("skimage's truncated.jpg: an error, as PIL raises one (LOAD_TRUNCATED_IMAGES = False)", async () => {
      const file = path.join(IMAGES, 'truncated.jpg');
      await expectImageError(decodeImage(file), `image ${file}: cannot decode: truncated JPEG`);
    });

    it('a JPEG cut anywhere, even just before its end marker', async () => {
      const bytes = fs.readFileSync(path.join(IMAGES, 'rocket.jpg'));
      for (const keep of [100, 700, 5000, bytes.length / 2, bytes.length - 2]) {
        await expectImageError(decodeImage(bytes.subarray(0, Math.floor(keep)), { name: 'cut.jpg' }), 'image cut.jpg: cannot decode: truncated JPEG');
      }
    });

    it('a truncated or corrupt PNG', async () => {
      const bytes = fs.readFileSync(path.join(IMAGES, 'chelsea.png'));
      await expectImageError(decodeImage(bytes.subarray(0, 5000), { name: 'cut.png' }), 'image cut.png: cannot decode: truncated PNG');
      const bad = Buffer.from(bytes);
      bad[3000] ^= 0xff; // inside the first IDAT: its CRC no longer matches
      await expectImageError(
        decodeImage(bad, { name: 'bad.png' }),
        'image bad.png: cannot decode: corrupt PNG: chunk IDAT is damaged (its CRC does not match)',
      );
    });

    it('a GIF whose image data ends early, without printing anything (omggif would)', async () => {
      const bytes = Buffer.from(fs.readFileSync(path.join(VARIANTS, 'palette.gif')));
      expect(bytes[109], 'image descriptor').to.equal(0x2c);
      bytes[116] = 255; // frame height 12 -> 255: the LZW data runs out
      const { log, warn } = console;
      let printed = 0;
      console.log = console.warn = (): void => {
        printed++;
      };
      try {
        await expectImageError(decodeImage(bytes, { name: 'short.gif' }), 'image short.gif: cannot decode: truncated GIF');
      } finally {
        console.log = log;
        console.warn = warn;
      }
      expect(printed).to.equal(0);
    });

    it('an image over the size limit, before decoding it', async () => {
      const file = path.join(IMAGES, 'hubble.jpg');
      await expectImageError(decodeImage(file, { maxMegapixels: 0.5 }), `image ${file}: too large: 1000 x 872 pixels`);
    });

    it('input of the wrong type', async () => {
      await expectImageError(decodeImage(42 as unknown as string), 'expected a path, Buffer or Uint8Array');
    });
  });
});
