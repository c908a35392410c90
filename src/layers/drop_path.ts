/**
 * Stochastic depth / DropPath (Huang et al. 2016; timm drop_path): in training, each sample's
 * residual branch is dropped with probability `rate` and survivors are scaled by 1 / (1 - rate), so
 * the expectation is unchanged; at inference it is the identity.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../errors';

/**
 * @param x        [N, ...] residual branch, one mask value per sample
 * @param rate     drop probability in [0, 1)
 * @param training identity unless true
 * @param seed     seed of the per-sample uniform draw (reproducible training)
 * @param keepMask given 0/1 per sample instead of a random draw (parity with another framework)
 */
export function dropPath<T extends tf.Tensor>(x: T, rate: number, training: boolean, seed?: number, keepMask?: number[]): T {
  if (!(rate >= 0 && rate < 1)) throw new ConfigError(`dropPath: rate must be in [0, 1), got ${rate}`);
  if (!training || rate === 0) return x;
  return tf.tidy(() => {
    const keep = 1 - rate;
    const maskShape = [x.shape[0], ...new Array<number>(x.rank - 1).fill(1)];
    if (keepMask && keepMask.length !== x.shape[0]) throw new ConfigError(`dropPath: keep mask has ${keepMask.length} entries for ${x.shape[0]} samples`);
    // floor(keep + U[0,1)) is 1 with probability `keep`, else 0.
    const mask = keepMask ? tf.tensor(keepMask, maskShape) : tf.floor(tf.add(tf.randomUniform(maskShape, 0, 1, 'float32', seed), keep));
    return tf.mul(x, tf.div(mask, keep)) as T;
  });
}

/**
 * Per-block drop-path rates: linspace(0, dropPathRate, totalBlocks) in block order, split by stage
 * (the first block gets 0, the last `dropPathRate`).
 */
export function dropPathSchedule(depths: readonly number[], dropPathRate: number): number[][] {
  const total = depths.reduce((a, b) => a + b, 0);
  const rates = Array.from({ length: total }, (_, i) => (total > 1 ? (dropPathRate * i) / (total - 1) : 0));
  const out: number[][] = [];
  let k = 0;
  for (const d of depths) {
    out.push(rates.slice(k, k + d));
    k += d;
  }
  return out;
}
