/**
 * The browser build's stand-ins for Node built-ins (src/browser/node/): checked here against Node's
 * own modules, so the converter behaves the same on them in a page (test/browser runs it there).
 */
import { expect } from 'chai';
import * as nodePath from 'path';
import * as zlib from 'zlib';
import * as memFs from '../../src/browser/node/fs';
import * as os from '../../src/browser/node/os';
import * as path from '../../src/browser/node/path';
import * as memZlib from '../../src/browser/node/zlib';

describe('browser build: Node built-in stand-ins', () => {
  it('path: join/dirname/basename/extname/relative/resolve as path.posix', () => {
    const P = nodePath.posix;
    const cases: [string, (p: typeof P | typeof path) => string][] = [
      ['join . config.json', (p) => p.join('.', 'config.json')],
      ['join ..', (p) => p.join('a/b', '../c', './d')],
      ['join abs', (p) => p.join('/a', 'b/', 'c.pth')],
      ['dirname bare', (p) => p.dirname('config.json')],
      ['dirname abs', (p) => p.dirname('/a/b/c.pth')],
      ['dirname root', (p) => p.dirname('/a')],
      ['basename', (p) => p.basename('/a/b.pth')],
      ['basename ext', (p) => p.basename('/a/b.pth', '.pth')],
      ['extname', (p) => p.extname('x.tar.gz')],
      ['extname dotfile', (p) => p.extname('.hidden')],
      ['relative', (p) => p.relative('/a/b', '/a/c/d')],
      ['relative same', (p) => p.relative('/a/b', '/a/b')],
      ['resolve', (p) => p.resolve('/x', 'a', '/b', 'c', '..', 'd')],
    ];
    for (const [what, f] of cases) expect(f(path), what).to.equal(f(P));
  });

  it('fs: an in-memory file table read by descriptor; Node-shaped errors; read-only', () => {
    const bytes = new Uint8Array([1, 2, 3, 4, 5]);
    memFs.putMemoryFile('ckpt.pth', bytes);
    try {
      expect(memFs.existsSync('ckpt.pth')).to.equal(true);
      const fd = memFs.openSync('ckpt.pth', 'r');
      expect(memFs.fstatSync(fd).size).to.equal(5);
      const buf = new Uint8Array(4);
      expect(memFs.readSync(fd, buf, 1, 3, 3)).to.equal(2); // only 2 bytes left at 3
      expect([...buf]).to.deep.equal([0, 4, 5, 0]);
      memFs.closeSync(fd);
      expect(() => memFs.fstatSync(fd)).to.throw(/EBADF/);
      expect(memFs.readFileSync('ckpt.pth', 'latin1')).to.equal('\x01\x02\x03\x04\x05');
    } finally {
      memFs.removeMemoryFile('ckpt.pth');
    }
    let err: unknown;
    try {
      memFs.openSync('ckpt.pth');
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).to.equal('ENOENT');
    expect(() => memFs.openSync('x', 'w')).to.throw(/EROFS/);
    expect(() => memFs.writeFileSync('x')).to.throw(/read-only/);
  });

  it('zlib: inflateRawSync serves what was pre-inflated for those exact bytes, within maxOutputLength', () => {
    const plain = new TextEncoder().encode('ConvNeXt '.repeat(200));
    const raw = new Uint8Array(zlib.deflateRawSync(plain));
    memZlib.putInflated(raw, plain);
    try {
      expect(Buffer.compare(Buffer.from(memZlib.inflateRawSync(raw, { maxOutputLength: plain.length })), Buffer.from(plain))).to.equal(0);
      expect(() => memZlib.inflateRawSync(raw, { maxOutputLength: 10 })).to.throw(/maxOutputLength/);
      const other = raw.slice();
      other[0] ^= 1;
      expect(() => memZlib.inflateRawSync(other)).to.throw(/not pre-inflated/);
    } finally {
      memZlib.clearInflated();
    }
    expect(() => memZlib.inflateRawSync(raw)).to.throw(/not pre-inflated/);
  });

  it('os: byte order and a core count', () => {
    expect(os.endianness()).to.equal(require('os').endianness());
    expect(os.availableParallelism()).to.be.at.least(1);
  });
});
