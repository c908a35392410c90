/**
 * Malformed and hostile checkpoints: each must end in a CheckpointError with a specific message,
 * promptly, without executing anything and without absurd allocations.
 */
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { CheckpointError, UnsafePickleError } from '../../weights-converter/errors';
import { readCheckpointSync } from '../../weights-converter/read';
import { ZipReader } from '../../weights-converter/zip';
import {
  PickleBuilder,
  ZipInput,
  buildZip,
  expectCheckpointError,
  f32Bytes,
  fixture,
  rng,
  tempDir,
  torchZip,
} from './helpers';

const MARKER = '/tmp/convnext_tfjs_PWNED';

/** The entries of a fixture archive, to rebuild it with changes. */
function entriesOf(file: string): ZipInput[] {
  const zip = ZipReader.open(file);
  try {
    return zip.names().map((name) => ({ name, data: zip.read(name) }));
  } finally {
    zip.close();
  }
}

describe('weights-converter: hostile and malformed checkpoints', () => {
  let tmp: { dir: string; cleanup: () => void };
  let n = 0;
  before(() => {
    tmp = tempDir();
    fs.rmSync(MARKER, { force: true });
  });
  after(() => tmp.cleanup());
  const put = (bytes: Uint8Array, ext = '.pth'): string => {
    const p = path.join(tmp.dir, `f${n++}${ext}`);
    fs.writeFileSync(p, bytes);
    return p;
  };

  describe('code execution attempts are refused by name and never run', () => {
    const cases: [string, string][] = [
      ['evil_os_system.pth', 'posix.system'], // torch.save({'model': <reduce to os.system>})
      ['evil_eval_legacy.pth', '__builtin__.eval'], // legacy format, protocol 2 names
      ['evil_subprocess_proto4.pth', 'subprocess.Popen'], // STACK_GLOBAL
      ['evil_bare.pkl', 'posix.system'], // a bare pickle that is not a torch file at all
    ];
    for (const [file, global] of cases) {
      it(`${file}: ${global}`, () => {
        const err = expectCheckpointError(
          () => readCheckpointSync(fixture(file)),
          new RegExp(`refusing to load global '${global.replace('.', '\\.')}' \\(not in the allowlist of tensor state-dict types\\)`),
        );
        expect(err).to.be.instanceOf(UnsafePickleError);
        expect((err as UnsafePickleError).globalName).to.equal(global);
        expect(err.file).to.equal(fixture(file));
        expect(fs.existsSync(MARKER), 'marker file must not exist').to.equal(false);
      });
    }
    it('__builtin__.getattr inside a hand-built data.pkl', () => {
      const pkl = new PickleBuilder().proto().emptyDict().str('model')
        .global('__builtin__', 'getattr').mark().global('os', 'path').str('join').tuple().reduce()
        .setitem().stop().bytes();
      const err = expectCheckpointError(() => readCheckpointSync(put(torchZip(pkl))), /refusing to load global '__builtin__\.getattr'/);
      expect(err).to.be.instanceOf(UnsafePickleError);
    });
    it('a whole pickled nn.Module is refused with a hint', () => {
      const pkl = new PickleBuilder().proto().global('__main__', 'Net').emptyTuple().raw(0x81).stop().bytes();
      expectCheckpointError(() => readCheckpointSync(put(torchZip(pkl))), /refusing to load global '__main__\.Net'/);
    });
  });

  describe('files that are not checkpoints', () => {
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
    it('gzip, .npy and tar look-alikes', () => {
      expectCheckpointError(() => readCheckpointSync(put(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]))), /gzip-compressed/);
      expectCheckpointError(() => readCheckpointSync(put(Buffer.from('\x93NUMPY\x01\x00v\x00{}', 'latin1'))), /\.npy array/);
      const tar = Buffer.alloc(1024);
      tar.write('archive', 0);
      tar.write('ustar', 257);
      expectCheckpointError(() => readCheckpointSync(put(tar)), /tar-format torch checkpoint/);
    });
    it('a missing file', () => {
      expectCheckpointError(() => readCheckpointSync(path.join(tmp.dir, 'missing.pth')), /cannot open/);
    });
    it('a directory', () => {
      expectCheckpointError(() => readCheckpointSync(tmp.dir), /: a checkpoint must be a regular file, but this is a directory$/);
    });
    it('a pickle without the torch magic number', () => {
      const p = new PickleBuilder().proto().int(5).stop().bytes();
      expectCheckpointError(() => readCheckpointSync(put(p)), /not a torch checkpoint: a pickle without the torch legacy magic number/);
    });
    it('a TorchScript archive', () => {
      const z = torchZip(new PickleBuilder().proto().emptyDict().stop().bytes(), {}, [{ name: 'archive/constants.pkl', data: Buffer.from([0x80, 2, 0x29, 0x2e]) }]);
      expectCheckpointError(() => readCheckpointSync(put(z)), /TorchScript archive \(torch\.jit\.save\)/);
    });
    it('a zip without data.pkl', () => {
      const z = buildZip([{ name: 'archive/other.txt', data: Buffer.from('x') }]);
      expectCheckpointError(() => readCheckpointSync(put(z)), /zip archive has no 'archive\/data\.pkl' entry/);
    });
  });

  describe('corrupt torch zip archives', () => {
    const base = fixture('zip_proto4.pth');
    const pklName = 'zip_proto4/data.pkl';
    it('cut in half', () => {
      const whole = fs.readFileSync(base);
      expectCheckpointError(() => readCheckpointSync(put(whole.subarray(0, whole.length >> 1))), /truncated zip: end of central directory not found/);
    });
    it('flipped bytes in data.pkl are caught by the CRC', () => {
      const whole = Buffer.from(fs.readFileSync(base));
      const zip = ZipReader.open(base);
      const off = zip.dataOffset(pklName);
      zip.close();
      whole[off + 40] ^= 0x55;
      expectCheckpointError(() => readCheckpointSync(put(whole)), /CRC-32 mismatch in entry 'zip_proto4\/data\.pkl'/);
    });
    it('flipped bytes in a storage are caught by the CRC', () => {
      const whole = Buffer.from(fs.readFileSync(base));
      const zip = ZipReader.open(base);
      const off = zip.dataOffset('zip_proto4/data/0');
      zip.close();
      whole[off] ^= 0x01;
      expectCheckpointError(() => readCheckpointSync(put(whole)), /CRC-32 mismatch in entry 'zip_proto4\/data\/0'/);
      expect(readCheckpointSync(put(whole), { verifyCrc: false }).tensors.size).to.equal(3);
    });
    it('an unknown opcode in data.pkl (with a valid CRC)', () => {
      const entries = entriesOf(base);
      const pkl = Buffer.from(entries[0].data);
      pkl[pkl.length - 1] = 0xfe; // replace STOP
      entries[0].data = pkl;
      expectCheckpointError(() => readCheckpointSync(put(buildZip(entries))), new RegExp(`corrupt ${pklName.replace('/', '\\/')}: unknown pickle opcode 0xfe at offset ${pkl.length - 1}`));
    });
    it('a truncated data.pkl (with a valid CRC)', () => {
      const entries = entriesOf(base);
      entries[0].data = entries[0].data.subarray(0, 100);
      expectCheckpointError(() => readCheckpointSync(put(buildZip(entries))), /truncated zip_proto4\/data\.pkl/);
    });
    it('a storage key missing from the archive', () => {
      const entries = entriesOf(base).filter((e) => e.name !== 'zip_proto4/data/1');
      expectCheckpointError(() => readCheckpointSync(put(buildZip(entries))), /storage '1' is missing from the archive \(no entry 'zip_proto4\/data\/1'\)/);
    });
    it('a storage shorter than its persistent id declares', () => {
      const entries = entriesOf(base);
      const s = entries.find((e) => e.name === 'zip_proto4/data/0')!;
      const full = s.data.length;
      s.data = s.data.subarray(0, 8);
      expectCheckpointError(() => readCheckpointSync(put(buildZip(entries))), new RegExp(`storage '0' holds 8 bytes but its persistent id declares ${full / 4} float32 elements`));
    });
    it('a tensor view larger than its storage', () => {
      const pkl = new PickleBuilder().proto().emptyDict().str('w').tensor('FloatStorage', '0', 4, 0, [10, 10], [10, 1]).setitem().stop().bytes();
      expectCheckpointError(
        () => readCheckpointSync(put(torchZip(pkl, { 0: f32Bytes([1, 2, 3, 4]) }))),
        /tensor \[10, 10\] with stride \[10, 1\] and offset 0 needs elements up to 99 but storage '0' \(4 float32\) has only 4 elements/,
      );
      const off = new PickleBuilder().proto().emptyDict().str('w').tensor('FloatStorage', '0', 4, 3, [2], [1]).setitem().stop().bytes();
      expectCheckpointError(() => readCheckpointSync(put(torchZip(off, { 0: f32Bytes([1, 2, 3, 4]) }))), /needs elements up to 4/);
    });
    it('an absurd stride-0 expansion', () => {
      const pkl = new PickleBuilder().proto().emptyDict().str('w').tensor('FloatStorage', '0', 1, 0, [100000, 100000], [0, 0]).setitem().stop().bytes();
      expectCheckpointError(() => readCheckpointSync(put(torchZip(pkl, { 0: f32Bytes([1]) }))), /overlapping strides\) is too large|too large/);
    });
    it('a valid hand-built archive reads (control for the cases above)', () => {
      const pkl = new PickleBuilder().proto().emptyDict()
        .str('w').tensor('FloatStorage', '0', 4, 1, [3], [1]).setitem()
        .str('t').tensor('FloatStorage', '0', 4, 0, [2, 2], [1, 2]).setitem()
        .stop().bytes();
      const c = readCheckpointSync(put(torchZip(pkl, { 0: f32Bytes([1, 2, 3, 4]) })));
      expect([...c.tensors.get('w')!.data]).to.deep.equal([2, 3, 4]);
      expect([...c.tensors.get('t')!.data]).to.deep.equal([1, 3, 2, 4]);
    });
    it("a byteorder entry of 'big'", () => {
      const entries = entriesOf(fixture('zip_dtypes.pth'));
      const bo = entries.find((e) => e.name.endsWith('/byteorder'));
      if (bo !== undefined) bo.data = Buffer.from('big');
      else entries.splice(1, 0, { name: 'zip_dtypes/byteorder', data: Buffer.from('big') });
      expectCheckpointError(() => readCheckpointSync(put(buildZip(entries))), /big-endian checkpoint \(byteorder 'big'\) is not supported/);
    });
    it('a top-level object that is not a dict', () => {
      const pkl = new PickleBuilder().proto().emptyList().stop().bytes();
      expectCheckpointError(() => readCheckpointSync(put(torchZip(pkl))), /top-level object is list, expected a dict of tensors/);
    });
    it('a dict without tensors', () => {
      const pkl = new PickleBuilder().proto().emptyDict().str('epoch').int(3).setitem().stop().bytes();
      expectCheckpointError(() => readCheckpointSync(put(torchZip(pkl))), /no state dict found: top-level keys are epoch/);
    });
    it('a storage persistent id of the wrong shape', () => {
      const pkl = new PickleBuilder().proto().mark().str('storage').global('torch', 'FloatStorage').str('0').tuple().binpersid().stop().bytes();
      expectCheckpointError(() => readCheckpointSync(put(torchZip(pkl))), /storage persistent id has 3 fields, expected 5/);
      const mod = new PickleBuilder().proto().mark().str('module').none().none().none().tuple().binpersid().stop().bytes();
      expectCheckpointError(() => readCheckpointSync(put(torchZip(mod))), /pickles a whole nn\.Module/);
    });
  });

  describe('corrupt legacy files', () => {
    const base = fixture('legacy_dtypes.pth');
    it('truncated in the storage area', () => {
      const whole = fs.readFileSync(base);
      expectCheckpointError(() => readCheckpointSync(put(whole.subarray(0, whole.length - 10))), /truncated legacy checkpoint: storage '\d+' \(\d+ bytes at \d+\) extends past the end/);
    });
    it('truncated in the pickles', () => {
      const whole = fs.readFileSync(base);
      expectCheckpointError(() => readCheckpointSync(put(whole.subarray(0, 200))), /truncated object pickle/);
    });
    it('a wrong magic number', () => {
      const whole = Buffer.from(fs.readFileSync(base));
      whole[5] ^= 0xff;
      expectCheckpointError(() => readCheckpointSync(put(whole)), /legacy magic number/);
    });
  });

  describe('fuzzing: every mutation either reads or throws a CheckpointError, promptly', function () {
    this.timeout(60000);
    const check = (bytes: Uint8Array, label: string): void => {
      const file = put(bytes);
      const t0 = Date.now();
      try {
        readCheckpointSync(file);
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw new Error(`${label}: ${(e as Error).name}: ${(e as Error).message}`);
        expect((e as Error).message, label).to.not.match(/unreadable checkpoint/); // the safety net must not be needed
      } finally {
        fs.rmSync(file, { force: true });
      }
      expect(Date.now() - t0, `${label} took too long`).to.be.below(2000);
    };
    for (const name of ['zip_dtypes.pth', 'legacy_dtypes.pth', 'fb_wrapped_legacy.pth', 'mixed.safetensors']) {
      it(`${name}: byte flips and truncations`, () => {
        const whole = fs.readFileSync(fixture(name));
        const r = rng(name.length * 7919);
        for (let k = 0; k < 150; k++) {
          const b = Buffer.from(whole);
          const flips = 1 + Math.floor(r() * 4);
          for (let j = 0; j < flips; j++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
          check(b, `${name} flip #${k}`);
        }
        for (let k = 0; k < 40; k++) check(whole.subarray(0, Math.floor(r() * whole.length)), `${name} cut #${k}`);
      });
    }
    it('data.pkl byte flips behind a valid CRC (the unpickler sees every corruption)', () => {
      const entries = entriesOf(fixture('zip_dtypes.pth'));
      const pkl = entries[0].data;
      const r = rng(42);
      for (let k = 0; k < 300; k++) {
        const b = Buffer.from(pkl);
        const flips = 1 + Math.floor(r() * 3);
        for (let j = 0; j < flips; j++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
        check(buildZip([{ name: entries[0].name, data: b }, ...entries.slice(1)]), `pkl flip #${k}`);
      }
    });
  });
});
