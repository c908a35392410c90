/**
 * Reading tensors back to plain arrays on every backend. webgpu has no synchronous read in Node
 * (dataSync throws "OffscreenCanvas is not defined"), so these await t.data().
 */
import * as tf from '@tensorflow/tfjs-core';

/** Name -> { shape, float32 values } of each tensor (the layout writeModelDir / writeSafetensors take). */
export type TensorArrays = Map<string, { shape: number[]; data: Float32Array }>;

/** Reads every tensor of a map (one at a time: one GPU read in flight, no extra copy held). */
export async function readTensors(tensors: Map<string, tf.Tensor>): Promise<TensorArrays> {
  const out: TensorArrays = new Map();
  for (const [name, t] of tensors) out.set(name, { shape: [...t.shape], data: (await t.data()) as Float32Array });
  return out;
}
