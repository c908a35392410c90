/**
 * Model weights in SharedArrayBuffers, for worker replicas: the main thread packs them once (one
 * JS copy), every worker reads Float32Array views on the same memory. Names and layouts are the
 * model's own (timm keys, TF.js layouts; see model/params.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConvNeXtConfig } from '../model/configs';
import { ConvNeXt, parameterSpecs } from '../model/convnext';
import { checkWeightsFit } from '../layers/params';

/** One parameter: a float32 view [byteOffset, byteOffset + 4 * length) on shared memory. */
export interface SharedParam {
  name: string;
  shape: number[];
  buffer: SharedArrayBuffer;
  byteOffset: number;
  length: number;
}

/** Everything a worker needs to rebuild the model: plain data, structured-cloneable (the buffers are shared, not copied). */
export interface SharedWeights {
  config: ConvNeXtConfig;
  params: SharedParam[];
  /** Bytes of float32 weights (shared, counted once). */
  bytes: number;
}

/** Weights as plain arrays (TF.js layouts), e.g. decoded from a model directory. */
export interface WeightsData {
  config: ConvNeXtConfig;
  weights: Map<string, { shape: number[]; data: Float32Array }>;
}

export type WeightsSource = ConvNeXt | WeightsData;

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The Float32Array view of a shared parameter. */
export function viewOf(p: SharedParam): Float32Array {
  return new Float32Array(p.buffer, p.byteOffset, p.length);
}

/** Checks names and shapes against the config, as a strict load_state_dict would, before anything is copied. */
function checkWeights(config: ConvNeXtConfig, weights: WeightsData['weights']): void {
  const want = new Map(parameterSpecs(config).map((s) => [s.name, s.shape]));
  const short = [...weights]
    .filter(([name, w]) => want.has(name) && w.data.length !== sizeOf(w.shape))
    .map(([name, w]) => `${name}: ${w.data.length} values for shape [${w.shape}]`);
  checkWeightsFit(want, weights, true, short);
}

/** One SharedArrayBuffer laid out for a live model's variables (filled by the caller). */
function layoutModel(source: ConvNeXt): { shared: SharedWeights; vars: tf.Variable[] } {
  const weights = source.getWeights();
  const vars = [...weights.values()];
  const names = [...weights.keys()];
  const total = vars.reduce((n, v) => n + v.size, 0);
  const buffer = new SharedArrayBuffer(total * 4);
  const params: SharedParam[] = [];
  let offset = 0;
  vars.forEach((v, i) => {
    params.push({ name: names[i], shape: [...v.shape], buffer, byteOffset: offset * 4, length: v.size });
    offset += v.size;
  });
  const config = { ...source.config, depths: [...source.config.depths], dims: [...source.config.dims] } as ConvNeXtConfig;
  return { shared: { config, params, bytes: total * 4 }, vars };
}

/**
 * shareWeights reading a live model with `await data()`: works on every backend (webgpu has no
 * synchronous read in Node). Plain weights go to shareWeights as they are.
 */
export async function shareWeightsAsync(source: WeightsSource): Promise<SharedWeights> {
  if (!(source instanceof ConvNeXt)) return shareWeights(source);
  const { shared, vars } = layoutModel(source);
  for (let i = 0; i < vars.length; i++) viewOf(shared.params[i]).set((await vars[i].data()) as Float32Array);
  return shared;
}

/**
 * Packs a model's weights into shared memory. A live ConvNeXt is read (dataSync) into one
 * SharedArrayBuffer; plain arrays already on a SharedArrayBuffer are used in place, the others are
 * copied into one new buffer. The source can be disposed or dropped afterwards.
 *
 *   const shared = shareWeights(model);   // then model.dispose() if the main thread no longer needs it
 */
export function shareWeights(source: WeightsSource): SharedWeights {
  if (source instanceof ConvNeXt) {
    const { shared, vars } = layoutModel(source);
    shared.params.forEach((p, i) => viewOf(p).set(vars[i].dataSync() as Float32Array));
    return shared;
  }
  const { config, weights } = source;
  checkWeights(config, weights);
  const isShared = (d: Float32Array): boolean => typeof SharedArrayBuffer !== 'undefined' && d.buffer instanceof SharedArrayBuffer;
  const toCopy = [...weights.values()].filter((w) => !isShared(w.data)).reduce((n, w) => n + w.data.length, 0);
  const buffer = new SharedArrayBuffer(toCopy * 4);
  const params: SharedParam[] = [];
  let offset = 0;
  let bytes = 0;
  // Model order (parameterSpecs), whatever the map's order.
  for (const s of parameterSpecs(config)) {
    const w = weights.get(s.name)!;
    bytes += w.data.byteLength;
    if (isShared(w.data)) {
      params.push({ name: s.name, shape: [...w.shape], buffer: w.data.buffer as SharedArrayBuffer, byteOffset: w.data.byteOffset, length: w.data.length });
      continue;
    }
    const p: SharedParam = { name: s.name, shape: [...w.shape], buffer, byteOffset: offset * 4, length: w.data.length };
    viewOf(p).set(w.data);
    params.push(p);
    offset += w.data.length;
  }
  return { config: { ...config }, params, bytes };
}
