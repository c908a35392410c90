/**
 * Entry point of an InferencePool worker (run from dist/src/parallel/worker.js). It initialises
 * its own TF.js backend (wasm with `threads` threads, 1 by default: one replica per core), rebuilds the
 * model from the shared weights and answers run requests one at a time.
 *
 * Weights: tf.tensor() over the shared Float32Array views. The wasm backend copies them into its
 * heap (unavoidable per replica); the cpu backend keeps the views, so cpu replicas share one copy.
 */
import { parentPort, workerData } from 'worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend';
import { ConvNeXt } from '../model/convnext';
import { FromWorker, ToWorker, WorkerInit } from './protocol';
import { viewOf } from './shared_weights';
import { builtOrDisposed } from '../util/dispose';

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(msg, transfer);
}

function errorFields(e: unknown): { name: string; message: string } {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
}

function buildModel(init: WorkerInit): ConvNeXt {
  const model = new ConvNeXt(init.weights.config, 0, 'zeros');
  const tensors = new Map<string, tf.Tensor>();
  try {
    return builtOrDisposed(model, () => {
      for (const p of init.weights.params) tensors.set(p.name, tf.tensor(viewOf(p), p.shape, 'float32'));
      model.loadWeights(tensors);
    });
  } finally {
    // The variables hold their own reference to the data.
    tf.dispose([...tensors.values()]);
  }
}

function compute(model: ConvNeXt, msg: Extract<ToWorker, { type: 'run' }>): tf.Tensor2D {
  return tf.tidy(() => {
    const x = tf.tensor4d(msg.data, msg.shape);
    if (msg.kind === 'embed') return model.embed(x);
    const logits = model.forward(x);
    return msg.kind === 'probs' ? tf.softmax(logits) : logits;
  });
}

/** An ArrayBuffer that can be transferred without detaching anything else. */
function ownBuffer(data: Float32Array): Float32Array {
  return data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
}

async function main(): Promise<void> {
  const init = workerData as WorkerInit;
  let model: ConvNeXt;
  try {
    const { backend } = await initBackend({ backend: init.backend, threads: init.threads });
    model = buildModel(init);
    post({ type: 'ready', backend });
  } catch (e) {
    post({ type: 'init-error', ...errorFields(e) });
    return;
  }
  parentPort!.on('message', async (msg: ToWorker) => {
    if (msg.type === 'memory') {
      const { numTensors, numBytes } = tf.memory();
      post({ type: 'memory', id: msg.id, memory: { numTensors, numBytes } });
      return;
    }
    // The pool sends one run at a time per worker. The read is async (webgpu has no sync read).
    try {
      const y = compute(model, msg);
      try {
        const data = ownBuffer((await y.data()) as Float32Array);
        post({ type: 'result', id: msg.id, data, shape: y.shape }, [data.buffer as ArrayBuffer]);
      } finally {
        y.dispose();
      }
    } catch (e) {
      post({ type: 'error', id: msg.id, ...errorFields(e) });
    }
  });
}

void main();
