/** Small helpers on flat typed arrays. */

type Typed = Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array;

/**
 * Gathers a C-order (row-major) array of `shape` from `src`, where element [i0, i1, ...] is read at
 * offset sum(i_d * strides[d]). Transposes and Fortran-to-C conversions are this with other strides.
 */
export function stridedGather<T extends Typed>(src: T, shape: number[], strides: number[]): T {
  const rank = shape.length;
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new (src.constructor as new (n: number) => T)(n);
  if (n === 0) return out;
  if (rank === 0) {
    out[0] = src[0];
    return out;
  }
  // Innermost axis as a tight loop, the outer index advanced once per row (2-3x faster than per element).
  const innerN = shape[rank - 1];
  const innerS = strides[rank - 1];
  const idx = new Array<number>(rank).fill(0);
  let base = 0;
  for (let o = 0; o < n;) {
    for (let j = 0, at = base; j < innerN; j++, at += innerS) out[o++] = src[at];
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]++;
      base += strides[d];
      if (idx[d] < shape[d]) break;
      base -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** Row-major strides of a shape. */
export function cStrides(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/** x transposed by `perm` (numpy.transpose), C order in and out. */
export function transposeArray<T extends Typed>(src: T, shape: number[], perm: number[]): { shape: number[]; data: T } {
  const strides = cStrides(shape);
  const outShape = perm.map((p) => shape[p]);
  return {
    shape: outShape,
    data: stridedGather(
      src,
      outShape,
      perm.map((p) => strides[p]),
    ),
  };
}
