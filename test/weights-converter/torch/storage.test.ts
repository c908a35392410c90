/** weights-converter/torch/storage.ts: the persistent id naming a storage. */
import { expect } from 'chai';
import { PyGlobal, PyTuple } from '../../../weights-converter/pickle/values';
import { readCheckpointSync } from '../../../weights-converter/read';
import { MAX_BLOCK_BYTES, storagePid } from '../../../weights-converter/torch/storage';
import { PickleBuilder, expectCheckpointError, handlerContext, torchZip, useTempDir } from '../helpers';

describe('weights-converter/torch/storage', () => {
  it("storagePid returns the fields of a ('storage', type, key, location, numel) id", () => {
    const ctx = handlerContext();
    const type = new PyGlobal('torch.FloatStorage', {});
    const fields = storagePid(new PyTuple(['storage', type, '0', 'cpu', 4]), ctx, 5);
    expect(fields).to.deep.equal(['storage', type, '0', 'cpu', 4]);
    // Python 2 pickles carry the type name as bytes.
    expect(storagePid(new PyTuple([Buffer.from('storage'), type, '0', 'cpu', 4, null]), ctx, 6)).to.have.length(6);
    expectCheckpointError(() => storagePid('storage', ctx, 5), /persistent id must be a tuple, got str/);
    expectCheckpointError(() => storagePid(new PyTuple(['tensor', type]), ctx, 5), /unknown persistent id type "tensor"/);
    expectCheckpointError(() => storagePid(new PyTuple(['storage', type, '0', 'cpu', 4]), ctx, 6), /storage persistent id has 5 fields, expected 6/);
    expect(MAX_BLOCK_BYTES).to.equal(2 ** 30);
  });

  describe('in a checkpoint', () => {
    const tmp = useTempDir();

    it('a storage persistent id of the wrong shape', () => {
      const pkl = new PickleBuilder().proto().mark().str('storage').global('torch', 'FloatStorage').str('0').tuple().binpersid().stop().bytes();
      expectCheckpointError(() => readCheckpointSync(tmp.put(torchZip(pkl))), /storage persistent id has 3 fields, expected 5/);
      const mod = new PickleBuilder().proto().mark().str('module').none().none().none().tuple().binpersid().stop().bytes();
      expectCheckpointError(() => readCheckpointSync(tmp.put(torchZip(mod))), /pickles a whole nn\.Module/);
    });
  });
});
