/**
 * A folder of hostile image inputs, as issue 14 tried them: valid files of extreme aspect ratio,
 * tiny files whose headers claim huge images, truncated and corrupt files, files that are not
 * images, and entries that are not regular files (FIFO, a link to /dev/zero, broken links, link
 * loops). Each bad entry comes with the reason it must be refused or skipped for; the good ones must
 * all get a result. Used by the decoder tests, the CLI test and the peak-RSS check.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { RgbImage } from '../../src/data/image';
import { crc32, encodePng } from '../../src/data/png';

const IMAGES = path.resolve(__dirname, '../../../test/fixtures/images');

/** Rewrites a PNG's IHDR width/height, with a correct CRC (so only the size lies). */
export function pngWithSize(png: Buffer, width: number, height: number): Buffer {
  const b = Buffer.from(png);
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  b.writeUInt32BE(crc32(b.subarray(12, 29)), 29);
  return b;
}

/** Rewrites a JPEG's SOF width/height. */
export function jpegWithSize(jpeg: Buffer, width: number, height: number): Buffer {
  const b = Buffer.from(jpeg);
  for (let p = 2; p + 9 < b.length;) {
    if (b[p] !== 0xff) throw new Error('bad marker walk');
    const m = b[p + 1];
    const len = b.readUInt16BE(p + 2);
    if (m >= 0xc0 && m <= 0xc2) {
      b.writeUInt16BE(height, p + 5);
      b.writeUInt16BE(width, p + 7);
      return b;
    }
    p += 2 + len;
  }
  throw new Error('no SOF');
}

/** A PNG whose (single) IDAT payload is replaced by `edit(payload)`, with a correct CRC. */
function withIdat(png: Buffer, edit: (z: Buffer) => Buffer): Buffer {
  const at = png.indexOf('IDAT', 0, 'latin1') - 4;
  const len = png.readUInt32BE(at);
  const z = edit(png.subarray(at + 8, at + 8 + len));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(z.length);
  const body = Buffer.concat([Buffer.from('IDAT', 'latin1'), z]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([png.subarray(0, at), head, body, crc, png.subarray(at + 12 + len)]);
}

function gradient(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 255;
  return { width, height, data };
}

/** A minimal 24-bit BMP header claiming `width` x `height`, followed by `pixelBytes` bytes. */
function bmp(width: number, height: number, pixelBytes: number): Buffer {
  const h = Buffer.alloc(54);
  h.write('BM', 0, 'latin1');
  h.writeUInt32LE(54 + pixelBytes, 2);
  h.writeUInt32LE(54, 10);
  h.writeUInt32LE(40, 14);
  h.writeInt32LE(width, 18);
  h.writeInt32LE(height, 22);
  h.writeUInt16LE(1, 26);
  h.writeUInt16LE(24, 28);
  return Buffer.concat([h, Buffer.alloc(pixelBytes, 0x80)]);
}

/** A GIF89a with a logical screen and one image descriptor of `width` x `height` and a few LZW bytes. */
function gif(width: number, height: number): Buffer {
  const head = Buffer.from('GIF89a', 'latin1');
  const screen = Buffer.alloc(7);
  screen.writeUInt16LE(width, 0);
  screen.writeUInt16LE(height, 2);
  screen[4] = 0x80; // global colour table, 2 entries
  const palette = Buffer.from([0, 0, 0, 255, 255, 255]);
  const desc = Buffer.alloc(10);
  desc[0] = 0x2c;
  desc.writeUInt16LE(width, 5);
  desc.writeUInt16LE(height, 7);
  const lzw = Buffer.from([0x02, 0x02, 0x44, 0x01, 0x00]);
  return Buffer.concat([head, screen, palette, desc, lzw, Buffer.from([0x3b])]);
}

export interface HostileFolder {
  dir: string;
  /** Files that must get a result. */
  good: string[];
  /** Path -> what the refusal or skip message must say. */
  bad: Map<string, RegExp>;
}

/**
 * Writes the hostile folder under `dir` (created). `special`: also a FIFO, a link to /dev/zero and
 * link loops (not on Windows).
 */
export function makeHostileFolder(dir: string, special = true): HostileFolder {
  fs.mkdirSync(dir, { recursive: true });
  const good: string[] = [];
  const bad = new Map<string, RegExp>();
  const put = (name: string, data: Buffer | Uint8Array, why: RegExp | null) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, data);
    if (why === null) good.push(p);
    else bad.set(p, why);
    return p;
  };
  const chelsea = fs.readFileSync(path.join(IMAGES, 'chelsea.png'));
  const rocket = fs.readFileSync(path.join(IMAGES, 'rocket.jpg'));
  const small = encodePng(gradient(40, 30));

  // Good: two photos, and valid images of extreme aspect ratio (resized through a window).
  put('a_chelsea.png', chelsea, null);
  put('b_rocket.jpg', rocket, null);
  put('strip_100000x1.png', encodePng(gradient(100000, 1)), null);
  put('strip_20000x1.png', encodePng(gradient(20000, 1)), null);
  put('strip_1x5000.png', encodePng(gradient(1, 5000)), null);

  // Headers that lie about the size.
  put('claims_13000x13000.jpg', jpegWithSize(rocket, 13000, 13000), /too large: 13000 x 13000 pixels is over the limit of 89478485/);
  put('claims_9000x9000.jpg', jpegWithSize(rocket, 9000, 9000), /corrupt JPEG: \d+ bytes of image data cannot hold 9000 x 9000 pixels/);
  put(
    'claims_4300x4300.jpg',
    jpegWithSize(rocket, 4300, 4300),
    /corrupt JPEG: 111482 bytes of image data cannot hold 4300 x 4300 pixels \(at least 217083 needed\)/,
  );
  // Plausible for its data size: decoded (jpeg-js, about 350 MB at most here) and found corrupt.
  put('claims_3000x3000.jpg', jpegWithSize(rocket, 3000, 3000), /corrupt JPEG: the compressed image data is damaged/);
  put('claims_30000x30000.png', pngWithSize(small, 30000, 30000), /too large: 30000 x 30000 pixels/);
  put('claims_9000x9000.png', pngWithSize(small, 9000, 9000), /corrupt PNG: \d+ bytes of compressed data cannot hold 9000 x 9000 pixels/);
  put('claims_60000x60000.gif', gif(60000, 60000), /too large: 60000 x 60000 pixels/);
  put('claims_20000x20000.bmp', bmp(20000, 20000, 1000), /too large: 20000 x 20000 pixels/);
  put('claims_4000x4000.bmp', bmp(4000, 4000, 1000), /truncated BMP: 4000 x 4000 at 24 bits needs \d+ bytes/);

  // Truncated and corrupt data.
  put('truncated.png', chelsea.subarray(0, 5000), /truncated PNG/);
  put('truncated.jpg', rocket.subarray(0, 20000), /truncated JPEG/);
  const crc = Buffer.from(chelsea);
  crc[chelsea.indexOf('IDAT', 0, 'latin1') + 100] ^= 0xff; // inside the first IDAT: its CRC no longer matches
  put('bad_crc.png', crc, /corrupt PNG: chunk IDAT is damaged \(its CRC does not match\)/);
  put(
    'bad_zlib.png',
    withIdat(small, (z) => z.subarray(0, z.length >> 1)),
    /truncated PNG: the image data ends early \(\d+ of 3630 bytes\)/,
  );
  put(
    'bad_zlib_header.png',
    withIdat(small, (z) => Buffer.concat([Buffer.from([0x78, 0x00]), z.subarray(2)])),
    /corrupt PNG: the compressed image data is damaged \[decoder: zlib: incorrect header check\]|corrupt PNG: the compressed image data is damaged$/,
  );

  // Not images.
  put('empty.png', Buffer.alloc(0), /empty file/);
  put('notes.jpg', Buffer.from('hello, I am text\n'), /unsupported format unknown/);
  put('image.webp.png', Buffer.concat([Buffer.from('RIFF\0\0\0\0WEBPVP8 ', 'latin1'), Buffer.alloc(32)]), /unsupported format WebP/);

  if (special) {
    // Not regular files, and links.
    const fifo = path.join(dir, 'pipe.png');
    execFileSync('mkfifo', [fifo]);
    bad.set(fifo, /not a regular file \(FIFO \(named pipe\)\)/);
    const zero = path.join(dir, 'zero.jpg');
    fs.symlinkSync('/dev/zero', zero);
    bad.set(zero, /not a regular file \(character device\)/);
    const linked = path.join(dir, 'link_to_chelsea.png');
    fs.symlinkSync(path.join(dir, 'a_chelsea.png'), linked);
    good.push(linked);
    const broken = path.join(dir, 'broken.png');
    fs.symlinkSync(path.join(dir, 'no-such-file.png'), broken);
    bad.set(broken, /broken symbolic link/);
    const self = path.join(dir, 'self.png');
    fs.symlinkSync(self, self);
    bad.set(self, /symbolic link loop/);
    fs.mkdirSync(path.join(dir, 'sub'));
    const up = path.join(dir, 'sub', 'up');
    fs.symlinkSync('..', up);
    bad.set(up, /symbolic link loop \(leads back to/);
  }
  return { dir, good, bad };
}
