/**
 * Non-trivial random weights for a model: LayerNorm weights 1 + 0.2 N(0,1), biases 0.1 N(0,1),
 * layer scale in +-[0.3, 1], GRN gamma/beta 0.5 N(0,1), conv/linear weights N(0, 1/fan_in).
 * With the official init (layer scale 1e-6, GRN 0) every block is ~identity and a test proves nothing.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConvNeXt } from '../src/model';
import { randn } from './helpers';
import { Nd, RefWeights } from './reference';

export function randomWeights(model: ConvNeXt, seed: string): RefWeights {
  const out: RefWeights = new Map();
  for (const info of model.parameterInfo()) {
    const { name, shape } = info;
    const size = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (name.endsWith('gamma')) {
      const u = randn(size, `${seed}/${name}`);
      data = u.map((v) => Math.sign(v || 1) * (0.3 + 0.7 * (Math.abs(v) % 1)));
    } else if (name.includes('grn.')) {
      data = randn(size, `${seed}/${name}`, 0.5);
    } else if (name.includes('norm.weight')) {
      data = randn(size, `${seed}/${name}`, 0.2, 1);
    } else if (name.endsWith('.bias')) {
      data = randn(size, `${seed}/${name}`, 0.1);
    } else {
      const fanIn = name.includes('conv_dw') ? shape[0] * shape[1] : size / shape[shape.length - 1];
      data = randn(size, `${seed}/${name}`, 1 / Math.sqrt(fanIn));
    }
    out.set(name, { shape, data: Float64Array.from(data) });
  }
  return out;
}

/** Assigns reference weights to the model. */
export function assignWeights(model: ConvNeXt, weights: RefWeights): void {
  const tensors = new Map<string, tf.Tensor>();
  for (const [k, v] of weights) tensors.set(k, tf.tensor(Float32Array.from(v.data), v.shape));
  model.loadWeights(tensors);
  tf.dispose([...tensors.values()]);
}

export function toNd(t: tf.Tensor): Nd {
  return { shape: t.shape, data: Float64Array.from(t.dataSync()) };
}
