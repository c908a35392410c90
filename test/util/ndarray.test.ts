/** src/util/ndarray.ts: the one strided gather (checkpoint views, .npy Fortran order, layout transposes). */
import { expect } from 'chai';
import { cStrides, stridedGather, transposeArray } from '../../src/util/ndarray';

/** Element [i0, i1, ...] read at sum(i_d * strides[d]), by an odometer over every index: the definition. */
function naiveGather(src: ArrayLike<number>, shape: number[], strides: number[]): number[] {
  const n = shape.reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let flat = 0; flat < n; flat++) {
    let rem = flat;
    let at = 0;
    for (let d = shape.length - 1; d >= 0; d--) {
      at += (rem % shape[d]) * strides[d];
      rem = Math.floor(rem / shape[d]);
    }
    out.push(src[at]);
  }
  return out;
}

describe('util/ndarray', () => {
  const iota = (n: number) => Float32Array.from({ length: n }, (_, i) => i);

  it('cStrides are row-major', () => {
    expect(cStrides([2, 3, 4])).to.deep.equal([12, 4, 1]);
    expect(cStrides([5])).to.deep.equal([1]);
    expect(cStrides([])).to.deep.equal([]);
  });

  it('stridedGather equals the definition on transposes, slices, stride 0 and Fortran order', () => {
    const src = iota(4 * 3 * 5 * 2);
    const cases: [number[], number[]][] = [
      [
        [3, 4],
        [1, 3],
      ], // transpose of [4, 3]
      [
        [2, 3, 4],
        [1, 2, 6],
      ], // Fortran order of [2, 3, 4]
      [
        [5, 2, 3, 4],
        [2, 1, 10, 30],
      ], // NCHW -> a permuted view of [4, 3, 5, 2]
      [
        [3, 2],
        [0, 7],
      ], // broadcast (stride 0) along the first axis
      [
        [2, 2],
        [12, 3],
      ], // a strided slice
      [
        [1, 7],
        [100, 1],
      ], // a unit axis with an arbitrary stride
      [[6], [4]],
    ];
    for (const [shape, strides] of cases) {
      const got = stridedGather(src, shape, strides);
      expect([...got], `${shape} / ${strides}`).to.deep.equal(naiveGather(src, shape, strides));
    }
  });

  it('keeps the array type; rank 0 and empty shapes', () => {
    const i = stridedGather(Int32Array.from([5, -6, 7, -8]), [2, 2], [1, 2]);
    expect(i).to.be.instanceOf(Int32Array);
    expect([...i]).to.deep.equal([5, 7, -6, -8]);
    const b = stridedGather(Uint8Array.from([1, 0, 1]), [3], [1]);
    expect(b).to.be.instanceOf(Uint8Array);
    const s = stridedGather(Float32Array.from([3.25]), [], []);
    expect([...s]).to.deep.equal([3.25]);
    expect(stridedGather(iota(6), [0, 3], [3, 1]).length).to.equal(0);
    expect(stridedGather(iota(6), [3, 0], [1, 3]).length).to.equal(0);
  });

  it('transposeArray is numpy.transpose (OIHW -> HWIO)', () => {
    const shape = [4, 3, 2, 2];
    const src = iota(48);
    const t = transposeArray(src, shape, [2, 3, 1, 0]);
    expect(t.shape).to.deep.equal([2, 2, 3, 4]);
    // out[h, w, i, o] = in[o, i, h, w]
    for (const [h, w, i, o] of [
      [0, 0, 0, 0],
      [1, 0, 2, 3],
      [0, 1, 1, 2],
      [1, 1, 2, 1],
    ]) {
      expect(t.data[((h * 2 + w) * 3 + i) * 4 + o]).to.equal(src[((o * 3 + i) * 2 + h) * 2 + w]);
    }
  });
});
