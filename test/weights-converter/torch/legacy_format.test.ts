/** weights-converter/torch/legacy_format.ts: pre-1.6 torch.save files (five pickles, then storages). */
import * as fs from 'fs';
import { expect } from 'chai';
import { TensorRef } from '../../../weights-converter/pickle/torch_rebuild';
import { PyDict } from '../../../weights-converter/pickle/values';
import { readCheckpointSync } from '../../../weights-converter/read';
import { LEGACY_MAGIC, LEGACY_PROTOCOL, openTorchLegacy } from '../../../weights-converter/torch/legacy_format';
import { PickleBuilder, expectCheckpointError, fixture, useTempDir } from '../helpers';

describe('weights-converter/torch/legacy_format', () => {
  const tmp = useTempDir();
  const put = (bytes: Uint8Array) => tmp.put(bytes);

  it("torch's magic number and protocol version", () => {
    expect(LEGACY_MAGIC).to.equal(119547037146038801333356n);
    expect(LEGACY_PROTOCOL).to.equal(1001);
  });

  it('locates every storage after the pickles and reads byte ranges of them', () => {
    const c = openTorchLegacy(fixture('legacy_dtypes.pth'));
    try {
      expect(c.format).to.equal('torch-legacy');
      const root = c.root as PyDict;
      const scalar = root.map.get('scalar') as TensorRef;
      expect(scalar.shape).to.deep.equal([]);
      const bytes = Buffer.from(c.source.readRange(scalar.storage.key, scalar.offset * 4, 4));
      expect(bytes.readFloatLE(0)).to.equal(3.25);
      const block = c.source.readBlock(scalar.storage.key, scalar.offset * 4, 4)!;
      expect(block.start).to.equal(scalar.offset * 4);
      expect(Buffer.from(block.bytes).equals(bytes)).to.equal(true);
      expectCheckpointError(() => c.source.readRange('no-such-key', 0, 4), /storage 'no-such-key' has no data in the file/);
    } finally {
      c.close();
    }
  });

  it('a pickle without the torch magic number', () => {
    const p = new PickleBuilder().proto().int(5).stop().bytes();
    expectCheckpointError(() => readCheckpointSync(put(p)), /not a torch checkpoint: a pickle without the torch legacy magic number/);
  });

  describe('corrupt legacy files', () => {
    const base = fixture('legacy_dtypes.pth');
    it('truncated in the storage area', () => {
      const whole = fs.readFileSync(base);
      expectCheckpointError(
        () => readCheckpointSync(put(whole.subarray(0, whole.length - 10))),
        /truncated legacy checkpoint: storage '\d+' \(\d+ bytes at \d+\) extends past the end/,
      );
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
});
