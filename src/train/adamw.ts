/**
 * AdamW (Loshchilov & Hutter 2019) with decoupled weight decay, as torch.optim.AdamW computes it:
 *
 *   p <- p * (1 - lr * wd)                         (decoupled decay; wd = 0 for norms, biases, gamma, GRN)
 *   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
 *   p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * Per-parameter groups give each parameter its own lr scale (layer-wise decay) and decay flag.
 * State (m, v, t) lives in tf.Variables and can be exported for checkpoints.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ADAMW_KERNEL } from '../kernel_names';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay (0.05 in the ConvNeXt recipes). */
  weightDecay?: number;
}

/** How one parameter is optimised. */
export interface ParamGroup {
  /** Multiplies the scheduled lr (layer-wise lr decay); 1 by default. */
  lrScale: number;
  /** Whether weight decay applies (false for 1-D parameters: norms, biases, layer scale, GRN). */
  decay: boolean;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Number of steps taken (PyTorch's `step` state). */
  step = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(
    private readonly params: Map<string, tf.Variable>,
    private readonly groups: Map<string, ParamGroup>,
    opts: AdamWOptions = {},
  ) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.05;
    for (const [name, p] of params) {
      // tf.variable keeps its own reference to the data: dispose the initial tensors (they leaked before)
      const [zm, zv] = [tf.zerosLike(p), tf.zerosLike(p)];
      this.m.set(name, tf.variable(zm, false));
      this.v.set(name, tf.variable(zv, false));
      tf.dispose([zm, zv]);
    }
  }

  /**
   * One update with learning rate `lr` from gradients by parameter name. Parameters without a
   * gradient (frozen) are left untouched, their moments too.
   */
  apply(grads: Map<string, tf.Tensor> | tf.NamedTensorMap, lr: number): void {
    const g = grads instanceof Map ? grads : new Map(Object.entries(grads));
    this.step += 1;
    const t = this.step;
    const bc1 = 1 - this.beta1 ** t;
    const bc2Sqrt = Math.sqrt(1 - this.beta2 ** t);
    for (const [name, grad] of g) {
      const p = this.params.get(name);
      if (!p) continue;
      const group = this.groups.get(name) ?? { lrScale: 1, decay: p.rank > 1 };
      const plr = lr * group.lrScale;
      const decay = group.decay && this.weightDecay > 0;
      if (grad.dtype === 'float32' && tf.getKernel(ADAMW_KERNEL, tf.getBackend())) {
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const attrs = { beta1: this.beta1, beta2: this.beta2, eps: this.eps, keep: 1 - plr * this.weightDecay, decay, bc2Sqrt, step: plr / bc1 };
        const [p2, m2, v2] = tf.engine().runKernel(ADAMW_KERNEL, { p, m, v, g: grad }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        m.assign(m2);
        v.assign(v2);
        p.assign(p2);
        tf.dispose([p2, m2, v2]);
        continue;
      }
      tf.tidy(() => {
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const mNew = tf.add(tf.mul(m, this.beta1), tf.mul(grad, 1 - this.beta1));
        const vNew = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(grad), 1 - this.beta2));
        m.assign(mNew);
        v.assign(vNew);
        const decayed = decay ? tf.mul(p, 1 - plr * this.weightDecay) : p;
        const denom = tf.add(tf.div(tf.sqrt(vNew), bc2Sqrt), this.eps);
        p.assign(tf.sub(decayed, tf.mul(tf.div(mNew, denom), plr / bc1)));
      });
    }
  }

  /** Moments by parameter name (live variables: read, don't dispose). */
  state(): { step: number; m: Map<string, tf.Variable>; v: Map<string, tf.Variable> } {
    return { step: this.step, m: this.m, v: this.v };
  }

  /** Restores exported state (a resumed run continues exactly). */
  loadState(step: number, m: Map<string, tf.Tensor>, v: Map<string, tf.Tensor>): void {
    for (const [name, t] of m) this.m.get(name)?.assign(t);
    for (const [name, t] of v) this.v.get(name)?.assign(t);
    this.step = step;
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
    this.m.clear();
    this.v.clear();
  }
}
