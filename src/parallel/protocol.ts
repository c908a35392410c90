/**
 * Messages between InferencePool (main thread) and its workers. Batches are NHWC float32
 * [N, H, W, C], already normalised; outputs are row-major [N, width].
 */
import { SharedWeights } from './shared_weights';

/** What a pool run computes: logits [N, classes], pooled pre-logits [N, C], or softmax(logits). */
export type RunKind = 'logits' | 'embed' | 'probs';

export const RUN_KINDS: readonly RunKind[] = ['logits', 'embed', 'probs'];

/** workerData of each worker. */
export interface WorkerInit {
  index: number;
  backend: string;
  /** wasm threads of this worker's backend (initBackend's `threads`). */
  threads: number;
  weights: SharedWeights;
}

export type ToWorker = { type: 'run'; id: number; kind: RunKind; data: Float32Array; shape: [number, number, number, number] } | { type: 'memory'; id: number };

/** A worker's TF.js memory (tf.memory()). */
export interface WorkerMemory {
  numTensors: number;
  numBytes: number;
}

export type FromWorker =
  | { type: 'ready'; backend: string }
  | { type: 'init-error'; name: string; message: string }
  | { type: 'result'; id: number; data: Float32Array; shape: number[] }
  | { type: 'error'; id: number; name: string; message: string }
  | { type: 'memory'; id: number; memory: WorkerMemory };
