import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { CheckpointError } from '../../weights-converter/errors';
import { ZipReader, crc32 } from '../../weights-converter/zip';
import { buildZip, expectCheckpointError, fixture, useTempDir } from './helpers';

describe('weights-converter/zip', () => {
  const tmp = useTempDir();
  const write = (name: string, bytes: Uint8Array) => tmp.put(bytes, name);

  it('crc32 matches the standard check value', () => {
    expect(crc32(Buffer.from('123456789'))).to.equal(0xcbf43926);
    expect(crc32(new Uint8Array(0))).to.equal(0);
  });

  it('reads a torch.save archive (ZIP64 EOCD, data descriptors, 64-byte aligned data)', () => {
    const zip = ZipReader.open(fixture('zip_dtypes.pth'));
    try {
      const names = zip.names();
      expect(names[0]).to.equal('zip_dtypes/data.pkl');
      expect(names).to.include('zip_dtypes/version');
      expect(names.filter((n) => n.startsWith('zip_dtypes/data/')).length).to.be.greaterThan(10);
      // Every entry's bytes pass the CRC recorded by torch: offsets and sizes are right.
      for (const n of names) {
        const e = zip.get(n)!;
        expect(e.method).to.equal(0);
        expect(zip.read(n).length).to.equal(e.uncompressedSize);
        expect(zip.dataOffset(e) % 64, `${n} data is aligned`).to.equal(0);
      }
      expect(zip.read('zip_dtypes/version').toString()).to.match(/^\d+\n$/);
      const pkl = zip.read('zip_dtypes/data.pkl');
      expect([pkl[0], pkl[1]]).to.deep.equal([0x80, 0x02]);
      expect(zip.readRange('zip_dtypes/data.pkl', 1, 3)).to.deep.equal(pkl.subarray(1, 4));
    } finally {
      zip.close();
    }
  });

  for (const zip64 of [false, true]) {
    it(`reads stored and deflated entries${zip64 ? ' with ZIP64 records' : ''} and a trailing comment`, () => {
      const big = Buffer.alloc(5000);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
      const file = write(
        `t${zip64}.zip`,
        buildZip(
          [
            { name: 'a/stored.bin', data: Buffer.from('hello stored') },
            { name: 'a/deflated.bin', data: big, method: 8 },
            { name: 'a/empty', data: Buffer.alloc(0) },
          ],
          { zip64, comment: zip64 ? '' : 'a comment' },
        ),
      );
      const zip = ZipReader.open(file);
      try {
        expect(zip.names()).to.deep.equal(['a/stored.bin', 'a/deflated.bin', 'a/empty']);
        expect(zip.read('a/stored.bin').toString()).to.equal('hello stored');
        expect(zip.readRange('a/stored.bin', 6, 6).toString()).to.equal('stored');
        expect(zip.read('a/deflated.bin').equals(big)).to.equal(true);
        expect(zip.readRange('a/deflated.bin', 4000, 10).equals(big.subarray(4000, 4010))).to.equal(true);
        expect(zip.read('a/empty').length).to.equal(0);
      } finally {
        zip.close();
      }
    });
  }

  it('refuses truncated archives', () => {
    const whole = fs.readFileSync(fixture('zip_dtypes.pth'));
    for (const cut of [whole.length >> 1, whole.length - 1, whole.length - 22, 30, 21, 0]) {
      const file = write(`cut${cut}.zip`, whole.subarray(0, cut));
      expectCheckpointError(() => ZipReader.open(file), /truncated zip/);
    }
  });

  it('refuses random bytes without a central directory', () => {
    const junk = Buffer.alloc(4096);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 2654435761) >>> 24;
    const file = write('junk.zip', junk);
    expectCheckpointError(() => ZipReader.open(file), /truncated zip: end of central directory not found/);
  });

  it('checks CRCs, compression methods and encryption', () => {
    const data = Buffer.from('payload');
    const file = write(
      'bad.zip',
      buildZip([
        { name: 'crc', data, crc: 1234 },
        { name: 'bzip2', data, method: 12 },
        { name: 'enc', data, flags: 0x1 },
      ]),
    );
    const zip = ZipReader.open(file);
    try {
      expectCheckpointError(() => zip.read('crc'), /CRC-32 mismatch in entry 'crc'/);
      expect(zip.read('crc', { verifyCrc: false }).toString()).to.equal('payload');
      expectCheckpointError(() => zip.read('bzip2'), /compression method 12; only stored \(0\) and deflate \(8\)/);
      expectCheckpointError(() => zip.read('enc'), /is encrypted/);
      expectCheckpointError(() => zip.read('missing'), /zip entry 'missing' not found/);
      expectCheckpointError(() => zip.readRange('crc', 5, 10), /outside zip entry/);
      expectCheckpointError(() => zip.read('crc', { maxBytes: 3 }), /more than the 3 allowed/);
    } finally {
      zip.close();
    }
  });

  it('refuses central directory fields pointing outside the file', () => {
    const good = buildZip([{ name: 'x', data: Buffer.from('abc') }]);
    const cdStart = good.length - 22 - (46 + 1);
    // Local header offset far past the end.
    const b1 = Buffer.from(good);
    b1.writeUInt32LE(0x7fffffff, cdStart + 42);
    expectCheckpointError(() => ZipReader.open(write('off.zip', b1)), /entry 'x' .* extends past the end/);
    // Central directory size larger than the file.
    const b2 = Buffer.from(good);
    b2.writeUInt32LE(0x10000000, good.length - 22 + 12);
    expectCheckpointError(() => ZipReader.open(write('cd.zip', b2)), /central directory .* extends past the end/);
    // Entry count larger than the directory can hold.
    const b3 = Buffer.from(good);
    b3.writeUInt16LE(500, good.length - 22 + 10);
    expectCheckpointError(() => ZipReader.open(write('count.zip', b3)), /500 entries cannot fit/);
    // Compressed size past the end.
    const b4 = Buffer.from(good);
    b4.writeUInt32LE(0x7ffffff0, cdStart + 20);
    expectCheckpointError(() => ZipReader.open(write('size.zip', b4)), /extends past the end/);
    // Bad local header signature.
    const b5 = Buffer.from(good);
    b5.writeUInt32LE(0, 0);
    const z = ZipReader.open(write('local.zip', b5));
    try {
      expectCheckpointError(() => z.read('x'), /bad local header signature/);
    } finally {
      z.close();
    }
  });

  it('refuses a ZIP64 locator pointing nowhere', () => {
    const good = buildZip([{ name: 'x', data: Buffer.from('abc') }], { zip64: true });
    const b = Buffer.from(good);
    b.writeBigUInt64LE(1n << 50n, good.length - 22 - 20 + 8);
    expectCheckpointError(() => ZipReader.open(write('z64.zip', b)), /zip64 end of central directory offset .* out of range/);
  });

  it('reports a missing file as a CheckpointError', () => {
    expect(() => ZipReader.open(path.join(tmp.dir, 'nope.zip'))).to.throw(CheckpointError, /cannot open/);
  });
});
