/**
 * Shared plumbing of the TypeScript training kernels for the wasm backend: a structural view of
 * the backend (no import of @tensorflow/tfjs-backend-wasm needed), input/output access on the wasm
 * heap, the conv geometry every kernel derives from tfjs-core's computeConv2DInfo, the kernel
 * config around a loop, and the channel-blocked sum of products the depthwise loops share.
 */
import * as tf from '@tensorflow/tfjs-core';

/** The part of tfjs-backend-wasm's BackendWasm these kernels use. */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.backend_util.TypedArray;
}

export function asWasmBackend(backend: unknown, kernel: string): WasmBackendLike {
  const b = backend as Partial<WasmBackendLike> | null;
  if (!b || typeof b.makeOutput !== 'function' || typeof b.typedArrayFromHeap !== 'function') {
    throw new Error(`${kernel}: expected the wasm backend (makeOutput / typedArrayFromHeap), got another backend`);
  }
  return b as WasmBackendLike;
}

/**
 * Allocates a float32 output on the wasm heap, then returns zero-copy float32 views of the inputs
 * and of the output. The views are taken AFTER the allocation: an allocation can grow the wasm
 * memory and detach earlier views. Non-float32 inputs are copied to float32. The caller must not
 * allocate on the wasm heap while it uses the views, and must write every output element
 * (the heap is not zeroed).
 */
export function prepare(
  backend: WasmBackendLike,
  inputs: tf.TensorInfo[],
  outShape: number[],
): { out: tf.TensorInfo; outVals: Float32Array; inVals: Float32Array[] } {
  const out = backend.makeOutput(outShape, 'float32');
  const inVals = inputs.map((t) => {
    const a = backend.typedArrayFromHeap(t);
    return a instanceof Float32Array ? a : Float32Array.from(a);
  });
  const outVals = backend.typedArrayFromHeap(out) as Float32Array;
  return { out, outVals, inVals };
}

/** NHWC conv geometry, flattened to plain numbers for the hot loops. */
export interface ConvGeometry {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outH: number;
  outW: number;
  /** Output channels (depthwise: inC * multiplier). */
  outC: number;
  fH: number;
  fW: number;
  strideH: number;
  strideW: number;
  dilH: number;
  dilW: number;
  padTop: number;
  padLeft: number;
}

export function geometry(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  if (info.dataFormat !== 'channelsLast') {
    throw new Error('wasm training kernels support NHWC (channelsLast) only');
  }
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    outH: info.outHeight,
    outW: info.outWidth,
    outC: info.outChannels,
    fH: info.filterHeight,
    fW: info.filterWidth,
    strideH: info.strideHeight,
    strideW: info.strideWidth,
    dilH: info.dilationHeight,
    dilW: info.dilationWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

export function checkShape(kernel: string, what: string, got: readonly number[], want: readonly number[]): void {
  if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
    throw new Error(`${kernel}: ${what} has shape [${got}], expected [${want}]`);
  }
}

/** The attributes the three conv gradient kernels read (tfjs-core's Conv2DBackprop*Attrs). */
interface ConvGradAttrs {
  strides: number | [number, number];
  pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dilations?: number | [number, number];
  dataFormat?: string;
  inputShape?: [number, number, number, number];
  filterShape?: [number, number, number, number];
}

/**
 * The KernelConfig of one conv gradient on 'wasm'. Each of these kernels takes dy and one of x /
 * filter as inputs and the other one's shape as an attribute (inputShape / filterShape), and gives
 * the gradient with respect to that other one: `run(a, b, geometry, out)` gets float32 views of
 * (x, dy) for a filter gradient, of (dy, filter) for an input gradient.
 */
export function convGradKernel(
  kernelName: string,
  depthwise: boolean,
  run: (a: Float32Array, b: Float32Array, g: ConvGeometry, out: Float32Array) => void,
): tf.KernelConfig {
  return {
    kernelName,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, filter, dy } = inputs as { x?: tf.TensorInfo; filter?: tf.TensorInfo; dy: tf.TensorInfo };
      const a = attrs as unknown as ConvGradAttrs;
      if (a.dataFormat === 'NCHW') throw new Error(`${kernelName} (wasm): dataFormat NCHW is not supported, use NHWC`);
      const xShape = (x?.shape ?? a.inputShape) as [number, number, number, number];
      const filterShape = (filter?.shape ?? a.filterShape) as [number, number, number, number];
      const dilations = depthwise ? (a.dilations ?? 1) : 1;
      const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, a.strides, dilations, a.pad, a.dimRoundingMode, depthwise, 'channelsLast');
      checkShape(kernelName, 'dy', dy.shape, info.outShape);
      const operands = x ? [x, dy] : [dy, filter as tf.TensorInfo];
      const { out, outVals, inVals } = prepare(asWasmBackend(backend, kernelName), operands, [...(x ? filterShape : xShape)]);
      run(inVals[0], inVals[1], geometry(info), outVals);
      return out;
    },
  };
}

/**
 * out[o + c] = sum over runs t < count, steps r < len of a[ao[t] + r*aStep + c] * b[bo[t] + r*bStep + c]
 * for every channel c < C: the product of two channel rows summed over runs of evenly spaced rows,
 * in (t, r) order, in 4-channel register blocks (JS doubles, as the cpu backend) and then one
 * channel at a time.
 */
export function sumRowProducts(
  a: Float32Array,
  ao: Int32Array,
  aStep: number,
  b: Float32Array,
  bo: Int32Array,
  bStep: number,
  count: number,
  len: number,
  C: number,
  out: Float32Array,
  o: number,
): void {
  let c = 0;
  for (; c + 4 <= C; c += 4) {
    let s0 = 0,
      s1 = 0,
      s2 = 0,
      s3 = 0;
    for (let t = 0; t < count; t++) {
      for (let r = 0, i = ao[t] + c, j = bo[t] + c; r < len; r++, i += aStep, j += bStep) {
        s0 += a[i] * b[j];
        s1 += a[i + 1] * b[j + 1];
        s2 += a[i + 2] * b[j + 2];
        s3 += a[i + 3] * b[j + 3];
      }
    }
    out[o + c] = s0;
    out[o + c + 1] = s1;
    out[o + c + 2] = s2;
    out[o + c + 3] = s3;
  }
  for (; c < C; c++) {
    let s = 0;
    for (let t = 0; t < count; t++) {
      for (let r = 0, i = ao[t] + c, j = bo[t] + c; r < len; r++, i += aStep, j += bStep) s += a[i] * b[j];
    }
    out[o + c] = s;
  }
}
