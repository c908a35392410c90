import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { detectFormat, readCheckpoint, readCheckpointSync } from '../../weights-converter/read';
import {
  PickleBuilder,
  expectCheckpointErrorAsync,
  expectTensor,
  expectTensors,
  f32Bytes,
  fixture,
  loadExpected,
  tempDir,
  torchZip,
} from './helpers';

describe('weights-converter/read: checkpoints written by PyTorch', () => {
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
      'conv.weight', 'conv.bias', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked', 'norm.weight',
    ]);
  });

  for (const name of ['zip_dtypes.pth', 'legacy_dtypes.pth']) {
    describe(`${name}: views`, () => {
      const exp = expected[name].tensors;
      it('a transposed (non-contiguous) tensor comes out in C order', () => {
        const c = readCheckpointSync(fixture(name));
        const t = c.tensors.get('transposed')!;
        expect(t.shape).to.deep.equal([4, 3]);
        expectTensor('transposed', t, exp.transposed);
        expectTensor('h_transposed', c.tensors.get('h_transposed'), exp.h_transposed);
        // Independently: transposed[i][j] == conv-free w[j][i]; w is stored row-major [3,4].
        const v = exp.transposed.values as number[];
        expect(t.data[1 * 3 + 2]).to.equal(v[1 * 3 + 2]);
      });
      it('two tensors sharing one storage at different offsets get their own arrays', () => {
        const c = readCheckpointSync(fixture(name));
        const a = c.tensors.get('shared_a')!;
        const b = c.tensors.get('shared_b')!;
        // base = arange(24) * 0.5; a = base[2:8].view(2, 3); b = base[10:14]
        expect([...a.data]).to.deep.equal([1, 1.5, 2, 2.5, 3, 3.5]);
        expect([...b.data]).to.deep.equal([5, 5.5, 6, 6.5]);
        expect(a.data.buffer).to.not.equal(b.data.buffer);
        a.data[0] = 99;
        expect(b.data[0]).to.equal(5);
        // sliced = base.view(4, 6)[1:, 1:5:2]: offset 7, stride (6, 2)
        expect([...c.tensors.get('sliced')!.data]).to.deep.equal([3.5, 4.5, 6.5, 7.5, 9.5, 10.5]);
      });
      it('stride-0 (expanded), 0-d and empty tensors', () => {
        const c = readCheckpointSync(fixture(name));
        expect([...c.tensors.get('expanded')!.data]).to.deep.equal([1.5, -2, 4, 1.5, -2, 4]);
        const s = c.tensors.get('scalar')!;
        expect(s.shape).to.deep.equal([]);
        expect([...s.data]).to.deep.equal([3.25]);
        const e = c.tensors.get('empty')!;
        expect(e.shape).to.deep.equal([0, 3]);
        expect(e.data.length).to.equal(0);
      });
      it('int64 buffers become Int32Array', () => {
        const c = readCheckpointSync(fixture(name));
        const n = c.tensors.get('bn.num_batches_tracked')!;
        expect(n.dtype).to.equal('int64');
        expect(n.data).to.be.instanceOf(Int32Array);
        expect([...n.data]).to.deep.equal([123456]);
      });
    });
  }

  it('legacy and zip files of the same state dict read identically', () => {
    const a = readCheckpointSync(fixture('zip_dtypes.pth'));
    const b = readCheckpointSync(fixture('legacy_dtypes.pth'));
    expect([...b.tensors.keys()]).to.deep.equal([...a.tensors.keys()]);
    for (const [k, t] of a.tensors) {
      const u = b.tensors.get(k)!;
      expect(u.shape).to.deep.equal(t.shape);
      expect(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(
        Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), k).to.equal(true);
    }
  });

  describe('unwrapping', () => {
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
      await expectCheckpointErrorAsync(
        readCheckpoint(fixture('fb_wrapped.pth'), { wrapperKey: 'epoch' }),
        /'epoch' holds int, not a state dict/,
      );
      await expectCheckpointErrorAsync(
        readCheckpoint(fixture('mixed.safetensors'), { wrapperKey: 'model' }),
        /safetensors files have no wrapper/,
      );
    });
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

  describe('hand-built archives in forms torch 1.13 does not write', () => {
    let tmp: { dir: string; cleanup: () => void };
    before(() => {
      tmp = tempDir();
    });
    after(() => tmp.cleanup());
    const read = (name: string, bytes: Buffer) => {
      const file = path.join(tmp.dir, name);
      fs.writeFileSync(file, bytes);
      return readCheckpointSync(file);
    };
    const tuple = (b: PickleBuilder, xs: number[]) => {
      b.mark();
      for (const x of xs) b.int(x);
      return b.tuple();
    };

    it('_rebuild_from_type_v2(_rebuild_tensor_v2, torch.Tensor, args, state)', () => {
      const b = new PickleBuilder().proto().emptyDict().str('w');
      b.global('torch._tensor', '_rebuild_from_type_v2').mark();
      b.global('torch._utils', '_rebuild_tensor_v2').global('torch', 'Tensor');
      b.mark().storagePid('FloatStorage', '0', 4).int(0);
      tuple(b, [2, 2]);
      tuple(b, [2, 1]).newFalse().global('collections', 'OrderedDict').emptyTuple().reduce().tuple();
      b.emptyDict().tuple().reduce().setitem().stop();
      const c = read('v2type.pth', torchZip(b.bytes(), { 0: f32Bytes([1, 2, 3, 4]) }));
      expect([...c.tensors.get('w')!.data]).to.deep.equal([1, 2, 3, 4]);
      expect(c.tensors.get('w')!.shape).to.deep.equal([2, 2]);
    });

    it('_rebuild_tensor_v3 on a torch.UntypedStorage (byte) storage', () => {
      const b = new PickleBuilder().proto().emptyDict().str('w');
      b.global('torch._utils', '_rebuild_tensor_v3').mark().storagePid('UntypedStorage', '0', 16).int(1);
      tuple(b, [3]);
      tuple(b, [1]).newFalse().global('collections', 'OrderedDict').emptyTuple().reduce().global('torch', 'float32').tuple().reduce();
      b.setitem().stop();
      const c = read('v3.pth', torchZip(b.bytes(), { 0: f32Bytes([1, 2, 3, 4]) }));
      expect([...c.tensors.get('w')!.data]).to.deep.equal([2, 3, 4]);
      expect(c.tensors.get('w')!.dtype).to.equal('float32');
    });

    it('a plain dict mixing tensors and other values keeps the tensors and reports the rest', () => {
      const b = new PickleBuilder().proto().emptyDict();
      b.str('w').tensor('FloatStorage', '0', 2, 0, [2], [1]).setitem();
      b.str('step').int(10).setitem();
      b.stop();
      const c = read('mixed.pth', torchZip(b.bytes(), { 0: f32Bytes([5, 6]) }));
      expect(c.wrapper).to.equal(null);
      expect([...c.tensors.keys()]).to.deep.equal(['w']);
      expect(c.otherKeys).to.deep.equal(['step']);
    });

    it('an empty state dict reads as no tensors', () => {
      const c = read('empty.pth', torchZip(new PickleBuilder().proto().emptyDict().stop().bytes()));
      expect(c.tensors.size).to.equal(0);
    });
  });
});
