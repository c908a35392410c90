/**
 * Hostile checkpoints across the whole reader: code execution attempts are refused by name and
 * never run, and random corruption of every format ends in a CheckpointError, promptly, without
 * absurd allocations. (Corruptions specific to one module are tested beside it: torch/*, zip, ...)
 */
import * as fs from 'fs';
import { expect } from 'chai';
import { CheckpointError, UnsafePickleError } from '../../weights-converter/errors';
import { readCheckpointSync } from '../../weights-converter/read';
import { PyFloat } from '../../weights-converter/pickle/values';
import { PickleBuilder, buildZip, entriesOf, expectCheckpointError, f32Bytes, fixture, rng, torchZip, useTempDir } from './helpers';

const MARKER = '/tmp/convnext_tfjs_PWNED';

describe('weights-converter: hostile and malformed checkpoints', () => {
  const tmp = useTempDir();
  const put = (bytes: Uint8Array) => tmp.put(bytes);
  before(() => fs.rmSync(MARKER, { force: true }));

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
      const pkl = new PickleBuilder()
        .proto()
        .emptyDict()
        .str('model')
        .global('__builtin__', 'getattr')
        .mark()
        .global('os', 'path')
        .str('join')
        .tuple()
        .reduce()
        .setitem()
        .stop()
        .bytes();
      const err = expectCheckpointError(() => readCheckpointSync(put(torchZip(pkl))), /refusing to load global '__builtin__\.getattr'/);
      expect(err).to.be.instanceOf(UnsafePickleError);
    });
    it('a whole pickled nn.Module is refused with a hint', () => {
      const pkl = new PickleBuilder().proto().global('__main__', 'Net').emptyTuple().raw(0x81).stop().bytes();
      expectCheckpointError(() => readCheckpointSync(put(torchZip(pkl))), /refusing to load global '__main__\.Net'/);
    });
  });

  describe("float sizes are refused by the tensor's name, as torch refuses them; floats elsewhere load", () => {
    const F = (x: number) => new PyFloat(x);
    // {'head.bias': <valid>, key: <tensor with the given offset, size, stride, storage size>}
    const archive = (key: string, numel: number | PyFloat, offset: number | PyFloat, size: (number | PyFloat)[], stride: (number | PyFloat)[]) => {
      const pkl = new PickleBuilder()
        .proto()
        .emptyDict()
        .str('head.bias')
        .tensor('FloatStorage', '0', 2, 0, [2], [1])
        .setitem()
        .str(key)
        .tensor('FloatStorage', '1', numel, offset, size, stride)
        .setitem()
        .stop()
        .bytes();
      return put(torchZip(pkl, { 0: f32Bytes([1, 2]), 1: f32Bytes(new Array<number>(384).fill(0.5)) }));
    };
    const INT = /not an int \(torch refuses float sizes, strides and offsets\)/;

    it('a size of (8.0, 3, 4, 4)', () => {
      const err = expectCheckpointError(
        () => readCheckpointSync(archive('stem.0.weight', 384, 0, [F(8), 3, 4, 4], [48, 16, 4, 1])),
        /tensor 'stem\.0\.weight': size\[0\] is the float 8\.0, /,
      );
      expect(err.message).to.match(INT);
      expect(err).to.not.be.instanceOf(UnsafePickleError);
      // The same archive with int sizes reads: the float alone is what is refused.
      const ok = readCheckpointSync(archive('stem.0.weight', 384, 0, [8, 3, 4, 4], [48, 16, 4, 1]));
      expect(ok.tensors.get('stem.0.weight')!.shape).to.deep.equal([8, 3, 4, 4]);
    });
    it('a float stride, storage offset or storage size (integral or not)', () => {
      expectCheckpointError(() => readCheckpointSync(archive('w', 384, 0, [8, 48], [48, F(1)])), /tensor 'w': stride\[1\] is the float 1\.0, /);
      expectCheckpointError(() => readCheckpointSync(archive('w', 384, F(0), [8, 48], [48, 1])), /tensor 'w': storage offset is the float 0\.0, /);
      expectCheckpointError(() => readCheckpointSync(archive('w', F(384), 0, [8, 48], [48, 1])), /tensor 'w': storage size is the float 384\.0, /);
      expectCheckpointError(() => readCheckpointSync(archive('w', 384, 0, [F(2.5), 48], [48, 1])), /tensor 'w': size\[0\] is the float 2\.5, /);
      expectCheckpointError(() => readCheckpointSync(archive('w', 384, 0, [F(Infinity), 48], [48, 1])), /tensor 'w': size\[0\] is the float inf, /);
    });
    it('inside an nn.Parameter (_rebuild_parameter) the key is still named', () => {
      const pkl = new PickleBuilder()
        .proto()
        .emptyDict()
        .str('stages.0.gamma')
        .global('torch._utils', '_rebuild_parameter')
        .mark()
        .tensor('FloatStorage', '0', 4, 0, [F(4)], [1])
        .newFalse()
        .global('collections', 'OrderedDict')
        .emptyTuple()
        .reduce()
        .tuple()
        .reduce()
        .setitem()
        .stop()
        .bytes();
      expectCheckpointError(
        () => readCheckpointSync(put(torchZip(pkl, { 0: f32Bytes([1, 2, 3, 4]) }))),
        /tensor 'stages\.0\.gamma': size\[0\] is the float 4\.0, /,
      );
    });
    it("BINFLOAT values outside tensor metadata load: {'model': {...}, 'lr': 0.004, 'epoch': 3.0, 'best': [0.5, inf]}", () => {
      const pkl = new PickleBuilder()
        .proto()
        .emptyDict()
        .str('model')
        .emptyDict()
        .str('w')
        .tensor('FloatStorage', '0', 4, 0, [2, 2], [2, 1])
        .setitem()
        .setitem()
        .str('lr')
        .float(0.004)
        .setitem()
        .str('epoch')
        .float(3)
        .setitem()
        .str('best')
        .mark()
        .float(0.5)
        .float(Infinity)
        .raw(0x6c) // LIST
        .setitem()
        .stop()
        .bytes();
      const c = readCheckpointSync(put(torchZip(pkl, { 0: f32Bytes([1, 2, 3, 4]) })));
      expect(c.wrapper).to.equal('model');
      expect([...c.tensors.get('w')!.data]).to.deep.equal([1, 2, 3, 4]);
      expect(c.otherKeys).to.deep.equal(['best', 'epoch', 'lr']);
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
