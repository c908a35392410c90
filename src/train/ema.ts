/** Exponential moving average of the weights (timm ModelEmaV2): ema <- d * ema + (1 - d) * p after each step. */
import * as tf from '@tensorflow/tfjs-core';

export class ModelEma {
  readonly shadow = new Map<string, tf.Variable>();

  constructor(
    params: Map<string, tf.Variable>,
    readonly decay: number,
  ) {
    for (const [name, p] of params) this.shadow.set(name, tf.variable(p.clone(), false));
  }

  update(params: Map<string, tf.Variable>): void {
    tf.tidy(() => {
      for (const [name, p] of params) {
        const s = this.shadow.get(name)!;
        s.assign(tf.add(tf.mul(s, this.decay), tf.mul(p, 1 - this.decay)));
      }
    });
  }

  dispose(): void {
    for (const v of this.shadow.values()) v.dispose();
    this.shadow.clear();
  }
}

/**
 * The same update in place on plain arrays (float32 operations in the composite's order): the
 * data-parallel workers apply it to their slice of the shared shadow.
 */
export function emaArrays(shadow: Float32Array, p: Float32Array, decay: number): void {
  const [d, omd] = [Math.fround(decay), Math.fround(1 - decay)];
  for (let i = 0; i < shadow.length; i++) shadow[i] = Math.fround(Math.fround(shadow[i] * d) + Math.fround(p[i] * omd));
}
