/**
 * Shared plumbing of the TypeScript training kernels for the wasm backend: a structural view of
 * the backend (no import of @tensorflow/tfjs-backend-wasm needed), input/output access on the wasm
 * heap, and the conv geometry every kernel derives from tfjs-core's computeConv2DInfo.
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
