/**
 * Hostile checkpoints across the whole reader: code execution attempts are refused by name and
 * never run, and random corruption of every format ends in a CheckpointError, promptly, without
 * absurd allocations. (Corruptions specific to one module are tested beside it: torch/*, zip, ...)
 */
import * as fs from 'fs';
import { expect } from 'chai';
import { CheckpointError, UnsafePickleError } from '../../weights-converter/errors';
import { readCheckpointSync } from '../../weights-converter/read';
import { PickleBuilder, buildZip, entriesOf, expectCheckpointError, fixture, rng, torchZip, useTempDir } from './helpers';

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
