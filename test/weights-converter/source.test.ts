/** weights-converter/source.ts: the one open-or-throw of every reader, and exact positional reads. */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { CheckpointError } from '../../weights-converter/errors';
import { openRegularFile, readExactly } from '../../weights-converter/source';
import { expectCheckpointError, useTempDir } from './helpers';

/** Every public reader, called on `file` in a child process: a reader that blocked would hang it, not the suite. */
function readersOn(file: string): Record<string, string> {
  const wc = path.resolve(__dirname, '../../weights-converter');
  const script = `
    const wc = ${JSON.stringify(wc)};
    const file = ${JSON.stringify(file)};
    const readers = {
      readCheckpointSync: () => require(wc + '/read').readCheckpointSync(file),
      ZipReader: () => require(wc + '/zip').ZipReader.open(file),
      openTorchZip: () => require(wc + '/torch').openTorchZip(file),
      openTorchLegacy: () => require(wc + '/torch').openTorchLegacy(file),
      readSafetensors: () => require(wc + '/safetensors').readSafetensors(file),
      readSafetensorsHeader: () => require(wc + '/safetensors').readSafetensorsHeader(file),
    };
    const out = {};
    for (const [name, fn] of Object.entries(readers)) {
      try { fn(); out[name] = 'no error'; } catch (e) { out[name] = e.constructor.name + ': ' + e.message; }
    }
    process.stdout.write(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 30000, encoding: 'utf8' });
  expect(r.error, `child for ${file} (a reader blocked?)`).to.equal(undefined);
  expect(r.status, r.stderr).to.equal(0);
  return JSON.parse(r.stdout) as Record<string, string>;
}

const EXPECTED_WHAT: Record<string, string> = {
  readCheckpointSync: 'a checkpoint',
  ZipReader: 'a zip archive',
  openTorchZip: 'a zip archive',
  openTorchLegacy: 'a checkpoint',
  readSafetensors: 'a safetensors file',
  readSafetensorsHeader: 'a safetensors file',
};

describe('weights-converter/source', () => {
  const tmp = useTempDir();

  describe('openRegularFile', () => {
    it('opens a regular file: descriptor, size, and a close that is safe twice', () => {
      const file = tmp.put(Buffer.from('hello'), 'five.bin');
      const f = openRegularFile(file, 'a checkpoint');
      expect(f.size).to.equal(5);
      expect(readExactly(f.fd, 1, 3, file, 'test').toString()).to.equal('ell');
      f.close();
      f.close();
      expect(() => fs.fstatSync(f.fd)).to.throw(/EBADF/);
    });

    it('a missing file: cannot open, with the system reason', () => {
      const err = expectCheckpointError(() => openRegularFile(path.join(tmp.dir, 'missing.pth'), 'a checkpoint'), /cannot open: ENOENT/);
      expect(err.file).to.equal(path.join(tmp.dir, 'missing.pth'));
    });

    it('a directory, /dev/zero and a FIFO are named for what they are', function () {
      const fifo = path.join(tmp.dir, 'pipe');
      execFileSync('mkfifo', [fifo]);
      const cases: [string, string][] = [
        [tmp.dir, 'a directory'],
        ['/dev/zero', 'a character device'],
        [fifo, 'a FIFO (named pipe)'],
      ];
      for (const [file, kind] of cases) {
        const err = expectCheckpointError(
          () => openRegularFile(file, 'a checkpoint'),
          new RegExp(
            `^checkpoint ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: a checkpoint must be a regular file, but this is ${kind.replace(/[()]/g, '\\$&')}$`,
          ),
        );
        expect(err.file).to.equal(file);
      }
    });

    it('throws the error the caller asks for', () => {
      class NpyError extends Error {}
      const make = (file: string, reason: string) => new NpyError(`${file}: ${reason}`);
      expect(() => openRegularFile('/dev/zero', 'an .npy file', make)).to.throw(
        NpyError,
        /^\/dev\/zero: an \.npy file must be a regular file, but this is a character device$/,
      );
      expect(() => openRegularFile(path.join(tmp.dir, 'nope'), 'an .npy file', make)).to.throw(NpyError, /cannot open: ENOENT/);
    });
  });

  describe('every reader refuses what is not a regular file, promptly', () => {
    it('a FIFO (which would block an open or read forever)', () => {
      const fifo = path.join(tmp.dir, 'reader_pipe');
      execFileSync('mkfifo', [fifo]);
      const got = readersOn(fifo);
      expect(Object.keys(got)).to.deep.equal(Object.keys(EXPECTED_WHAT));
      for (const [reader, what] of Object.entries(EXPECTED_WHAT)) {
        expect(got[reader], reader).to.equal(`CheckpointError: checkpoint ${fifo}: ${what} must be a regular file, but this is a FIFO (named pipe)`);
      }
    });
    it('/dev/zero (which never ends) and a directory', () => {
      for (const [file, kind] of [
        ['/dev/zero', 'a character device'],
        [tmp.dir, 'a directory'],
      ]) {
        const got = readersOn(file);
        for (const [reader, what] of Object.entries(EXPECTED_WHAT)) {
          expect(got[reader], `${reader} on ${file}`).to.equal(`CheckpointError: checkpoint ${file}: ${what} must be a regular file, but this is ${kind}`);
        }
      }
    });
  });

  describe('readExactly', () => {
    it('reads exactly, or names what was truncated and where', () => {
      const file = tmp.put(Buffer.from('0123456789'), 'ten.bin');
      const f = openRegularFile(file, 'a checkpoint');
      try {
        expect(readExactly(f.fd, 7, 3, file, 'tail').toString()).to.equal('789');
        expect(readExactly(f.fd, 0, 0, file, 'nothing').length).to.equal(0);
        expectCheckpointError(() => readExactly(f.fd, 8, 4, file, 'zip local header'), /truncated zip local header: file ends at byte 10/);
      } finally {
        f.close();
      }
      const err = expectCheckpointError(() => readExactly(f.fd, 0, 1, file, 'header'), /read error in header: EBADF/);
      expect(err).to.be.instanceOf(CheckpointError);
    });
  });
});
