/** weights-converter/torch/state_dict.ts: choosing the state dict and its wrapper, stripping 'module.'. */
import { expect } from 'chai';
import { StorageRef, TensorRef } from '../../../weights-converter/pickle/torch_rebuild';
import { PyDict, PyValue } from '../../../weights-converter/pickle/values';
import { readCheckpoint, readCheckpointSync } from '../../../weights-converter/read';
import { WRAPPER_KEYS, selectStateDict } from '../../../weights-converter/torch/state_dict';
import {
  PickleBuilder,
  expectCheckpointError,
  expectCheckpointErrorAsync,
  expectTensors,
  f32Bytes,
  fixture,
  loadExpected,
  torchZip,
  useTempDir,
} from '../helpers';

const storage = new StorageRef('0', 'float32', 4, 'cpu');
const tensor = (): TensorRef => new TensorRef(storage, 0, [4], [1], 'float32', 4);

function dict(entries: [PyValue, PyValue][], className = 'dict'): PyDict {
  const d = new PyDict(className);
  for (const [k, v] of entries) d.map.set(k, v);
  return d;
}

describe('weights-converter/torch/state_dict', () => {
  const expected = loadExpected();

  describe('selectStateDict', () => {
    it('a dict of tensors is the state dict', () => {
      const a = tensor();
      const s = selectStateDict(
        dict([
          ['w', a],
          ['b', tensor()],
        ]),
        'f',
      );
      expect(s.wrapper).to.equal(null);
      expect(s.entries.map(([k]) => k)).to.deep.equal(['w', 'b']);
      expect(s.entries[0][1]).to.equal(a);
      expect([s.otherKeys, s.strippedPrefix]).to.deep.equal([[], null]);
    });

    it("wrapper keys are tried in order; the rest is listed, sorted, with the wrapper's own non-tensors", () => {
      expect(WRAPPER_KEYS).to.deep.equal(['model', 'state_dict', 'model_ema', 'module', 'state_dict_ema']);
      const root = dict([
        ['epoch', 3],
        ['state_dict_ema', dict([['w', tensor()]])],
        [
          'state_dict',
          dict([
            ['w', tensor()],
            ['_metadata', dict([])],
          ]),
        ],
        ['optimizer', dict([])],
      ]);
      const s = selectStateDict(root, 'f');
      expect(s.wrapper).to.equal('state_dict');
      expect(s.otherKeys).to.deep.equal(['epoch', 'optimizer', 'state_dict._metadata', 'state_dict_ema']);
      // A wrapper without tensors is skipped.
      const t = selectStateDict(
        dict([
          ['model', dict([['x', 1]])],
          ['model_ema', dict([['w', tensor()]])],
        ]),
        'f',
      );
      expect(t.wrapper).to.equal('model_ema');
      expect(t.otherKeys).to.deep.equal(['model']);
    });

    it("'module.' is stripped only when every key has it", () => {
      const all = selectStateDict(
        dict([
          ['module.a', tensor()],
          ['module.b', tensor()],
        ]),
        'f',
      );
      expect([all.strippedPrefix, all.entries.map(([k]) => k)]).to.deep.equal(['module.', ['a', 'b']]);
      const some = selectStateDict(
        dict([
          ['module.a', tensor()],
          ['b', tensor()],
        ]),
        'f',
      );
      expect([some.strippedPrefix, some.entries.map(([k]) => k)]).to.deep.equal([null, ['module.a', 'b']]);
    });

    it('refuses what is not a state dict, naming what it is', () => {
      expectCheckpointError(() => selectStateDict(dict([[1, tensor()]]), 'f'), /state dict key 1 \(int\) is not a string/);
      expectCheckpointError(() => selectStateDict(null, 'f'), /top-level object is None, expected a dict of tensors/);
      expectCheckpointError(() => selectStateDict(dict([['model', 1]]), 'f', 'model'), /'model' holds int, not a state dict/);
      expectCheckpointError(() => selectStateDict(dict([]), 'f', 'model'), /wrapper key 'model' not found; top-level keys: \(none\)/);
    });
  });

  describe('unwrapping real checkpoints', () => {
    it("FB-style {'model', 'model_ema', 'optimizer', 'args': Namespace, ...} defaults to 'model'", () => {
      const c = readCheckpointSync(fixture('fb_wrapped.pth'));
      expect(c.wrapper).to.equal('model');
      expect(c.otherKeys).to.include.members(['args', 'optimizer', 'model_ema', 'epoch', 'max_accuracy']);
      expect(c.strippedPrefix).to.equal(null);
    });
    for (const name of ['fb_wrapped.pth', 'fb_wrapped_legacy.pth']) {
      it(`${name}: wrapperKey 'model_ema' selects the EMA weights`, () => {
        const c = readCheckpointSync(fixture(name), { wrapperKey: 'model_ema' });
        expect(c.wrapper).to.equal('model_ema');
        expectTensors(c.tensors, expected[name].emaTensors!);
        expect(c.otherKeys).to.include('model');
      });
    }
    it("{'state_dict': {'module.*'}} is unwrapped and the DataParallel prefix stripped", () => {
      const c = readCheckpointSync(fixture('state_dict_module.pth'));
      expect(c.wrapper).to.equal('state_dict');
      expect(c.strippedPrefix).to.equal('module.');
      expect([...c.tensors.keys()]).to.deep.equal(['stem.weight', 'stem.bias', 'head.weight']);
    });
    it('an unknown wrapperKey lists the top-level keys', async () => {
      await expectCheckpointErrorAsync(
        readCheckpoint(fixture('fb_wrapped.pth'), { wrapperKey: 'ema' }),
        /wrapper key 'ema' not found; top-level keys: model, optimizer, epoch, model_ema, max_accuracy, args, scaler/,
      );
      await expectCheckpointErrorAsync(readCheckpoint(fixture('fb_wrapped.pth'), { wrapperKey: 'epoch' }), /'epoch' holds int, not a state dict/);
      await expectCheckpointErrorAsync(readCheckpoint(fixture('mixed.safetensors'), { wrapperKey: 'model' }), /safetensors files have no wrapper/);
    });
  });

  describe('hand-built archives', () => {
    const tmp = useTempDir();
    const put = (name: string, bytes: Buffer) => tmp.put(bytes, name);

    it('a plain dict mixing tensors and other values keeps the tensors and reports the rest', () => {
      const b = new PickleBuilder().proto().emptyDict();
      b.str('w').tensor('FloatStorage', '0', 2, 0, [2], [1]).setitem();
      b.str('step').int(10).setitem();
      b.stop();
      const c = readCheckpointSync(put('mixed.pth', torchZip(b.bytes(), { 0: f32Bytes([5, 6]) })));
      expect(c.wrapper).to.equal(null);
      expect([...c.tensors.keys()]).to.deep.equal(['w']);
      expect(c.otherKeys).to.deep.equal(['step']);
    });

    it('an empty state dict reads as no tensors', () => {
      const c = readCheckpointSync(put('empty.pth', torchZip(new PickleBuilder().proto().emptyDict().stop().bytes())));
      expect(c.tensors.size).to.equal(0);
    });

    it('a top-level object that is not a dict', () => {
      const pkl = new PickleBuilder().proto().emptyList().stop().bytes();
      expectCheckpointError(() => readCheckpointSync(put('list.pth', torchZip(pkl))), /top-level object is list, expected a dict of tensors/);
    });

    it('a dict without tensors', () => {
      const pkl = new PickleBuilder().proto().emptyDict().str('epoch').int(3).setitem().stop().bytes();
      expectCheckpointError(() => readCheckpointSync(put('none.pth', torchZip(pkl))), /no state dict found: top-level keys are epoch/);
    });
  });
});
