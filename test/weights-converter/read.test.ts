import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { detectFormat, readCheckpoint, readCheckpointSync } from '../../weights-converter/read';
import { expectCheckpointError, expectTensors, fixture, loadExpected, rng, tempDir, useTempDir } from './helpers';

describe('weights-converter/read', () => {
  const expected = loadExpected();
  const valid = Object.keys(expected).sort();

  for (const name of valid) {
    it(`${name}: format, wrapper, other keys and every tensor value`, async () => {
      const exp = expected[name];
      const ckpt = await readCheckpoint(fixture(name));
      expect(ckpt.format).to.equal(exp.format);
      expect(ckpt.wrapper).to.equal(exp.wrapper);
      expect(ckpt.otherKeys).to.deep.equal(exp.otherKeys);
      expect(ckpt.metadata).to.deep.equal(exp.metadata ?? {});
      expectTensors(ckpt.tensors, exp.tensors);
    });
  }

  it('keeps the state dict order', () => {
    const ckpt = readCheckpointSync(fixture('zip_dtypes.pth'));
    expect([...ckpt.tensors.keys()].slice(0, 8)).to.deep.equal([
      'conv.weight',
      'conv.bias',
      'bn.weight',
      'bn.bias',
      'bn.running_mean',
      'bn.running_var',
      'bn.num_batches_tracked',
      'norm.weight',
    ]);
  });

  it('legacy and zip files of the same state dict read identically', () => {
    const a = readCheckpointSync(fixture('zip_dtypes.pth'));
    const b = readCheckpointSync(fixture('legacy_dtypes.pth'));
    expect([...b.tensors.keys()]).to.deep.equal([...a.tensors.keys()]);
    for (const [k, t] of a.tensors) {
      const u = b.tensors.get(k)!;
      expect(u.shape).to.deep.equal(t.shape);
      expect(
        Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
        k,
      ).to.equal(true);
    }
  });

  describe('format detection', () => {
    it('uses the bytes, not the extension', async () => {
      const tmp = tempDir();
      try {
        const a = path.join(tmp.dir, 'looks_like.safetensors');
        const b = path.join(tmp.dir, 'looks_like.pth');
        const c = path.join(tmp.dir, 'no_extension');
        fs.copyFileSync(fixture('zip_proto4.pth'), a);
        fs.copyFileSync(fixture('mixed.safetensors'), b);
        fs.copyFileSync(fixture('fb_wrapped_legacy.pth'), c);
        expect((await readCheckpoint(a)).format).to.equal('torch-zip');
        expect((await readCheckpoint(b)).format).to.equal('safetensors');
        expect((await readCheckpoint(c)).format).to.equal('torch-legacy');
      } finally {
        tmp.cleanup();
      }
    });
    it('detectFormat on headers', () => {
      expect(detectFormat(Buffer.from('PK\x03\x04', 'latin1'))).to.equal('torch-zip');
      expect(detectFormat(Buffer.from([0x80, 0x02, 0x8a, 0x0a]))).to.equal('torch-legacy');
      expect(detectFormat(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0x7b]))).to.equal('safetensors');
      expect(detectFormat(Buffer.from('hello world, not a checkpoint'))).to.equal(null);
    });
  });

  describe('files that are not checkpoints', () => {
    const tmp = useTempDir();
    const put = (bytes: Uint8Array) => tmp.put(bytes);

    it('empty file', () => {
      expectCheckpointError(() => readCheckpointSync(put(Buffer.alloc(0))), /empty file \(0 bytes\)/);
    });
    it('random bytes', () => {
      const r = rng(1);
      const b = Buffer.alloc(10000);
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
      b[0] = 0x13;
      b[8] = 0x00;
      expectCheckpointError(() => readCheckpointSync(put(b)), /unrecognized format: not a torch zip, torch legacy or safetensors file \(first bytes: 13 /);
    });
    it('a short text file', () => {
      expectCheckpointError(() => readCheckpointSync(put(Buffer.from('hello'))), /unrecognized format/);
    });
    it('gzip, HDF5, .npy, tar and pickle protocol 1 look-alikes', () => {
      expectCheckpointError(() => readCheckpointSync(put(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]))), /gzip-compressed/);
      expectCheckpointError(() => readCheckpointSync(put(Buffer.from('\x89HDF\r\n\x1a\n\x00\x00', 'latin1'))), /HDF5 \(Keras \.h5\) files are not supported/);
      expectCheckpointError(() => readCheckpointSync(put(Buffer.from('\x93NUMPY\x01\x00v\x00{}', 'latin1'))), /\.npy array/);
      const tar = Buffer.alloc(1024);
      tar.write('archive', 0);
      tar.write('ustar', 257);
      expectCheckpointError(() => readCheckpointSync(put(tar)), /tar-format torch checkpoint/);
      expectCheckpointError(
        () => readCheckpointSync(put(Buffer.from([0x80, 0x01, 0x4e, 0x2e, 0, 0, 0, 0, 0, 0]))),
        /pickle protocol 1 is not supported \(expected 2 to 5\)/,
      );
    });
    it('a missing file', () => {
      expectCheckpointError(() => readCheckpointSync(path.join(tmp.dir, 'missing.pth')), /cannot open/);
    });
    it('a directory', () => {
      expectCheckpointError(() => readCheckpointSync(tmp.dir), /: a checkpoint must be a regular file, but this is a directory$/);
    });
  });
});
