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
  const idx = new Array<number>(rank).fill(0);
  let at = 0;
  for (let o = 0; o < n; o++) {
    out[o] = src[at];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      at += strides[d];
      if (idx[d] < shape[d]) break;
      at -= strides[d] * shape[d];
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
  return { shape: outShape, data: stridedGather(src, outShape, perm.map((p) => strides[p])) };
}
