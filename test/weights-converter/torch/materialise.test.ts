/** weights-converter/torch/materialise.ts: reading the selected views into contiguous C-order arrays. */
import { expect } from 'chai';
import { StorageRef, TensorRef } from '../../../weights-converter/pickle/torch_rebuild';
import { readCheckpointSync } from '../../../weights-converter/read';
import { materializeTensors } from '../../../weights-converter/torch/materialise';
import { StorageSource } from '../../../weights-converter/torch/storage';
import { expectCheckpointError, expectTensor, f32Bytes, fixture, loadExpected } from '../helpers';

/** Storages held in memory; `blocks: false` makes readBlock decline, as for storages over 1 GiB. */
function memorySource(storages: Record<string, Buffer>, blocks = true): StorageSource & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    readBlock(key, start, length) {
      calls.push(`block ${key} ${start} ${length}`);
      return blocks ? { bytes: storages[key], start: 0 } : null;
    },
    readRange(key, start, length) {
      calls.push(`range ${key} ${start} ${length}`);
      return storages[key].subarray(start, start + length);
    },
  };
}

describe('weights-converter/torch/materialise', () => {
  const expected = loadExpected();
  const s = new StorageRef('0', 'float32', 12, 'cpu');
  const base = f32Bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  const view = (offset: number, shape: number[], stride: number[], st = s) =>
    new TensorRef(
      st,
      offset,
      shape,
      stride,
      st.dtype,
      shape.reduce((a, b) => a * b, 1),
    );

  it('reads one block per storage, applies offsets and strides, keeps the state dict order', () => {
    const src = memorySource({ 0: base });
    const out = materializeTensors(
      [
        ['t', view(1, [3, 2], [1, 4])], // a transposed slice: t[i][j] = base[1 + i + 4j]
        ['c', view(4, [2, 2], [2, 1])],
        ['e', view(0, [0, 5], [5, 1])],
      ],
      src,
      'f',
    );
    expect([...out.keys()]).to.deep.equal(['t', 'c', 'e']);
    expect([...out.get('t')!.data]).to.deep.equal([1, 5, 2, 6, 3, 7]);
    expect([...out.get('c')!.data]).to.deep.equal([4, 5, 6, 7]);
    expect(out.get('e')!.data).to.be.instanceOf(Float32Array).and.have.length(0);
    expect(src.calls).to.deep.equal(['block 0 4 28']); // elements 1..7, once
    // Views of one storage never share memory.
    expect(out.get('c')!.data.buffer).to.not.equal(base.buffer);
  });

  it('falls back to byte ranges per tensor when the storage is too big for one block', () => {
    const src = memorySource({ 0: base }, false);
    const out = materializeTensors(
      [
        ['a', view(2, [2], [3])],
        ['b', view(10, [2], [1])],
      ],
      src,
      'f',
    );
    expect([...out.get('a')!.data]).to.deep.equal([2, 5]);
    expect([...out.get('b')!.data]).to.deep.equal([10, 11]);
    expect(src.calls).to.deep.equal(['block 0 8 40', 'range 0 8 16', 'range 0 40 8']);
  });

  it('legacy storage views add their element offset; a block shorter than the views is an error', () => {
    const sub = new StorageRef('0', 'float32', 4, 'cpu', 8);
    const out = materializeTensors([['v', view(1, [2], [1], sub)]], memorySource({ 0: base }), 'f');
    expect([...out.get('v')!.data]).to.deep.equal([9, 10]);
    expectCheckpointError(
      () => materializeTensors([['v', view(1, [2], [1], sub)]], memorySource({ 0: base.subarray(0, 16) }), 'f'),
      /storage '0' is shorter than tensor 'v' needs/,
    );
  });

  it('decoding errors name the tensor', () => {
    const longs = new StorageRef('1', 'int64', 1, 'cpu');
    const big = Buffer.alloc(8);
    big.writeBigInt64LE(1n << 40n);
    expectCheckpointError(
      () => materializeTensors([['n', view(0, [1], [1], longs)]], memorySource({ 1: big }), 'f'),
      /checkpoint f: tensor 'n': int64 value 1099511627776 at element 0 does not fit in int32/,
    );
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
        const sc = c.tensors.get('scalar')!;
        expect(sc.shape).to.deep.equal([]);
        expect([...sc.data]).to.deep.equal([3.25]);
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
});
