/** weights-converter/pickle/torch_rebuild.ts: torch's rebuild functions as lazy tensor references. */
import { expect } from 'chai';
import { readCheckpointSync } from '../../../weights-converter/read';
import {
  StorageRef,
  TensorRef,
  asInt,
  asText,
  rebuildFromType,
  rebuildParameter,
  rebuildTensorV1,
  rebuildTensorV2,
  rebuildTensorV3,
  storageDType,
  torchSize,
} from '../../../weights-converter/pickle/torch_rebuild';
import { PyFloat, PyGlobal, PyTuple, PyValue } from '../../../weights-converter/pickle/values';
import { PickleBuilder, expectCheckpointError, f32Bytes, handlerContext, torchZip, useTempDir } from '../helpers';

const tuple = (...xs: PyValue[]) => new PyTuple(xs);
const inert = (name: string) => new PyGlobal(name, {});

describe('weights-converter/pickle/torch_rebuild', () => {
  const storage = new StorageRef('0', 'float32', 12, 'cpu');

  it('_rebuild_tensor(_v2) makes a view checked against its storage', () => {
    const ctx = handlerContext();
    const t = rebuildTensorV2([storage, 2, tuple(2, 3), tuple(4, 1), false, null], ctx) as TensorRef;
    expect(t).to.be.instanceOf(TensorRef);
    expect([t.offset, t.shape, t.stride, t.dtype, t.numel]).to.deep.equal([2, [2, 3], [4, 1], 'float32', 6]);
    expect(t.storage).to.equal(storage);
    expect(t.describe()).to.equal('tensor float32[2, 3]');
    expect((rebuildTensorV1([storage, 0, tuple(12), tuple(1)], ctx) as TensorRef).numel).to.equal(12);
    expectCheckpointError(() => rebuildTensorV1([storage, 0, tuple(12), tuple(1), false], ctx), /_rebuild_tensor takes 4 arguments, got 5/);
    expectCheckpointError(() => rebuildTensorV2([storage, 0, tuple(12)], ctx), /_rebuild_tensor_v2 takes 4 to 7 arguments, got 3/);
    expectCheckpointError(() => rebuildTensorV2(['x', 0, tuple(1), tuple(1)], ctx), /tensor storage must be a storage, got str/);
    expectCheckpointError(() => rebuildTensorV2([storage, -1, tuple(1), tuple(1)], ctx), /storage offset must be a non-negative integer, got int -1/);
    expectCheckpointError(() => rebuildTensorV2([storage, 0, tuple(2, 2), tuple(1)], ctx), /size has 2 dimensions but stride has 1/);
    expectCheckpointError(() => rebuildTensorV2([storage, 0, new PyTuple(new Array(33).fill(1)), tuple(1)], ctx), /size has 33 dimensions \(at most 32\)/);
    expectCheckpointError(
      () => rebuildTensorV2([storage, 1, tuple(3, 4), tuple(4, 1)], ctx),
      /tensor \[3, 4\] with stride \[4, 1\] and offset 1 needs elements up to 12 but storage '0' \(12 float32\) has only 12 elements/,
    );
    expectCheckpointError(() => rebuildTensorV2([storage, 0, tuple(65536, 65536), tuple(0, 0)], ctx), /tensor of 4294967296 elements is too large/);
  });

  it('_rebuild_tensor_v3 views an untyped storage as the given dtype', () => {
    const ctx = handlerContext();
    const bytes = new StorageRef('b', 'uint8', 16, 'cpu', 4);
    const t = rebuildTensorV3([bytes, 1, tuple(2), tuple(1), false, null, inert('torch.float32')], ctx) as TensorRef;
    expect([t.dtype, t.offset, t.storage.numel, t.storage.elementOffset]).to.deep.equal(['float32', 1, 4, 1]);
    expectCheckpointError(
      () => rebuildTensorV3([new StorageRef('b', 'uint8', 16, 'cpu', 2), 0, tuple(1), tuple(1), false, null, inert('torch.float32')], ctx),
      /storage 'b' is not aligned for float32/,
    );
    expectCheckpointError(
      () => rebuildTensorV3([bytes, 0, tuple(1), tuple(1), false, null, inert('torch.complex64')], ctx),
      /unsupported tensor dtype global 'torch\.complex64'/,
    );
  });

  it('parameters and _rebuild_from_type_v2 unwrap to the tensor; other tensor types are refused', () => {
    const ctx = handlerContext();
    const t = rebuildTensorV2([storage, 0, tuple(3), tuple(1)], ctx);
    expect(rebuildParameter([t, true, null], ctx)).to.equal(t);
    expectCheckpointError(() => rebuildParameter([1], ctx), /_rebuild_parameter expects a tensor, got int/);
    const v2 = new PyGlobal('torch._utils._rebuild_tensor_v2', { call: rebuildTensorV2 });
    const args = new PyTuple([storage, 0, tuple(3), tuple(1)]);
    const r = rebuildFromType([v2, inert('torch.nn.parameter.Parameter'), args, null], ctx) as TensorRef;
    expect(r.shape).to.deep.equal([3]);
    expectCheckpointError(
      () => rebuildFromType([v2, inert('torch.masked.MaskedTensor'), args], ctx),
      /unsupported tensor type global 'torch\.masked\.MaskedTensor'/,
    );
    expectCheckpointError(() => rebuildFromType([inert('torch.float32'), inert('torch.Tensor'), args], ctx), /global 'torch\.float32' is not callable/);
  });

  it('storage classes, torch.Size and the value helpers', () => {
    const ctx = handlerContext();
    expect(storageDType(inert('torch.cuda.HalfStorage'), ctx)).to.equal('float16');
    expect(storageDType(inert('torch.BFloat16Storage'), ctx)).to.equal('bfloat16');
    expect(storageDType(inert('torch.UntypedStorage'), ctx)).to.equal('uint8');
    expectCheckpointError(() => storageDType('FloatStorage', ctx), /unsupported storage type str/);
    expect((torchSize([tuple(2, 3)], ctx) as PyTuple).items).to.deep.equal([2, 3]);
    expect((torchSize([], ctx) as PyTuple).items).to.deep.equal([]);
    expect(asInt(7, 'n', ctx)).to.equal(7);
    expectCheckpointError(() => asInt(1.5, 'n', ctx), /n must be a non-negative integer, got float 1\.5/);
    // A pickled float is no int even when integral (torch: "size must be tuple of ints").
    expectCheckpointError(() => asInt(new PyFloat(7), 'n', ctx), /n is the float 7\.0, not an int/);
    expectCheckpointError(
      () => asInt(-1, 'n', { ...ctx, pendingKey: () => 'stem.0.weight' }),
      /tensor 'stem\.0\.weight': n must be a non-negative integer, got int -1/,
    );
    expectCheckpointError(() => torchSize([tuple(2, new PyFloat(3))], ctx), /torch\.Size\[1\] is the float 3\.0/);
    expect(asText('k')).to.equal('k');
    expect(asText(Uint8Array.from([0x6b, 0xe9]))).to.equal('k\u00e9');
    expect(asText(3 as PyValue)).to.equal(null);
  });

  describe('hand-built archives in forms torch 1.13 does not write', () => {
    const tmp = useTempDir();
    const read = (name: string, bytes: Buffer) => readCheckpointSync(tmp.put(bytes, name));
    const tupleOf = (b: PickleBuilder, xs: number[]) => {
      b.mark();
      for (const x of xs) b.int(x);
      return b.tuple();
    };

    it('_rebuild_from_type_v2(_rebuild_tensor_v2, torch.Tensor, args, state)', () => {
      const b = new PickleBuilder().proto().emptyDict().str('w');
      b.global('torch._tensor', '_rebuild_from_type_v2').mark();
      b.global('torch._utils', '_rebuild_tensor_v2').global('torch', 'Tensor');
      b.mark().storagePid('FloatStorage', '0', 4).int(0);
      tupleOf(b, [2, 2]);
      tupleOf(b, [2, 1]).newFalse().global('collections', 'OrderedDict').emptyTuple().reduce().tuple();
      b.emptyDict().tuple().reduce().setitem().stop();
      const c = read('v2type.pth', torchZip(b.bytes(), { 0: f32Bytes([1, 2, 3, 4]) }));
      expect([...c.tensors.get('w')!.data]).to.deep.equal([1, 2, 3, 4]);
      expect(c.tensors.get('w')!.shape).to.deep.equal([2, 2]);
    });

    it('_rebuild_tensor_v3 on a torch.UntypedStorage (byte) storage', () => {
      const b = new PickleBuilder().proto().emptyDict().str('w');
      b.global('torch._utils', '_rebuild_tensor_v3').mark().storagePid('UntypedStorage', '0', 16).int(1);
      tupleOf(b, [3]);
      tupleOf(b, [1]).newFalse().global('collections', 'OrderedDict').emptyTuple().reduce().global('torch', 'float32').tuple().reduce();
      b.setitem().stop();
      const c = read('v3.pth', torchZip(b.bytes(), { 0: f32Bytes([1, 2, 3, 4]) }));
      expect([...c.tensors.get('w')!.data]).to.deep.equal([2, 3, 4]);
      expect(c.tensors.get('w')!.dtype).to.equal('float32');
    });

    it('a tensor view larger than its storage', () => {
      const pkl = new PickleBuilder().proto().emptyDict().str('w').tensor('FloatStorage', '0', 4, 0, [10, 10], [10, 1]).setitem().stop().bytes();
      expectCheckpointError(
        () => read('big.pth', torchZip(pkl, { 0: f32Bytes([1, 2, 3, 4]) })),
        /tensor \[10, 10\] with stride \[10, 1\] and offset 0 needs elements up to 99 but storage '0' \(4 float32\) has only 4 elements/,
      );
      const off = new PickleBuilder().proto().emptyDict().str('w').tensor('FloatStorage', '0', 4, 3, [2], [1]).setitem().stop().bytes();
      expectCheckpointError(() => read('off.pth', torchZip(off, { 0: f32Bytes([1, 2, 3, 4]) })), /needs elements up to 4/);
    });

    it('an absurd stride-0 expansion', () => {
      const pkl = new PickleBuilder().proto().emptyDict().str('w').tensor('FloatStorage', '0', 1, 0, [100000, 100000], [0, 0]).setitem().stop().bytes();
      expectCheckpointError(() => read('wide.pth', torchZip(pkl, { 0: f32Bytes([1]) })), /overlapping strides\) is too large|too large/);
      const mid = new PickleBuilder().proto().emptyDict().str('w').tensor('FloatStorage', '0', 1, 0, [5000, 5000], [0, 0]).setitem().stop().bytes();
      expectCheckpointError(
        () => read('mid.pth', torchZip(mid, { 0: f32Bytes([1]) })),
        /tensor view of 25000000 elements over a storage of 1 elements \(overlapping strides\) is too large/,
      );
    });
  });
});
