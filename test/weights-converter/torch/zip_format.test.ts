/** weights-converter/torch/zip_format.ts: torch.save zip archives, their layout and their corruptions. */
import * as fs from 'fs';
import { expect } from 'chai';
import { TensorRef } from '../../../weights-converter/pickle/torch_rebuild';
import { PyDict } from '../../../weights-converter/pickle/values';
import { readCheckpointSync } from '../../../weights-converter/read';
import { openTorchZip } from '../../../weights-converter/torch/zip_format';
import { ZipReader } from '../../../weights-converter/zip';
import { PickleBuilder, buildZip, entriesOf, expectCheckpointError, f32Bytes, fixture, torchZip, useTempDir } from '../helpers';

describe('weights-converter/torch/zip_format', () => {
  const tmp = useTempDir();
  const put = (bytes: Uint8Array) => tmp.put(bytes);

  it('unpickles data.pkl lazily: tensors are references, storages are read on demand', () => {
    const c = openTorchZip(fixture('zip_proto4.pth'));
    try {
      expect(c.format).to.equal('torch-zip');
      expect(c.root).to.be.instanceOf(PyDict);
      const refs = [...(c.root as PyDict).map.values()].filter((v): v is TensorRef => v instanceof TensorRef);
      expect(refs.length).to.equal(3);
      const t = refs[0];
      const bytes = c.source.readRange(t.storage.key, 0, 4);
      const block = c.source.readBlock(t.storage.key, 0, 4)!;
      expect(block.start).to.equal(0);
      expect(Buffer.from(block.bytes.subarray(0, 4)).equals(Buffer.from(bytes))).to.equal(true);
    } finally {
      c.close();
    }
  });

  it('a compressed storage that inflates past what its tensor needs is refused before inflating', () => {
    const entries = entriesOf(fixture('zip_proto4.pth'));
    const k = entries.findIndex((e) => /\/data\/\d+$/.test(e.name));
    const bomb = new Uint8Array(entries[k].data.length + (1 << 20)); // the storage plus 1 MiB of zeros, deflated
    bomb.set(entries[k].data);
    entries[k] = { name: entries[k].name, data: bomb, method: 8 };
    expectCheckpointError(() => readCheckpointSync(put(buildZip(entries))), /storage '\d+' inflates to \d+ bytes but its \d+ \w+ elements need \d+/);
  });

  it('a TorchScript archive', () => {
    const z = torchZip(new PickleBuilder().proto().emptyDict().stop().bytes(), {}, [
      { name: 'archive/constants.pkl', data: Buffer.from([0x80, 2, 0x29, 0x2e]) },
    ]);
    expectCheckpointError(() => readCheckpointSync(put(z)), /TorchScript archive \(torch\.jit\.save\)/);
  });
  it('a zip without data.pkl', () => {
    const z = buildZip([{ name: 'archive/other.txt', data: Buffer.from('x') }]);
    expectCheckpointError(() => readCheckpointSync(put(z)), /zip archive has no 'archive\/data\.pkl' entry/);
  });
  it('an empty archive', () => {
    expectCheckpointError(() => openTorchZip(put(buildZip([]))), /empty zip archive \(not a torch\.save checkpoint\)/);
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
      expectCheckpointError(
        () => readCheckpointSync(put(buildZip(entries))),
        new RegExp(`corrupt ${pklName.replace('/', '\\/')}: unknown pickle opcode 0xfe at offset ${pkl.length - 1}`),
      );
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
      expectCheckpointError(
        () => readCheckpointSync(put(buildZip(entries))),
        new RegExp(`storage '0' holds 8 bytes but its persistent id declares ${full / 4} float32 elements`),
      );
    });
    it('a valid hand-built archive reads (control for the cases above)', () => {
      const pkl = new PickleBuilder()
        .proto()
        .emptyDict()
        .str('w')
        .tensor('FloatStorage', '0', 4, 1, [3], [1])
        .setitem()
        .str('t')
        .tensor('FloatStorage', '0', 4, 0, [2, 2], [1, 2])
        .setitem()
        .stop()
        .bytes();
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
      const odd = entriesOf(fixture('zip_dtypes.pth')).filter((e) => !e.name.endsWith('/byteorder'));
      odd.splice(1, 0, { name: 'zip_dtypes/byteorder', data: Buffer.from('middle') });
      expectCheckpointError(() => readCheckpointSync(put(buildZip(odd))), /unknown byteorder 'middle'/);
    });
  });
});
