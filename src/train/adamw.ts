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
import { AdamWKernelAttrs } from '../backend/wasm_simd/adamw';
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

  /** How parameter `name` is optimised (its group, else lr scale 1 and decay for rank > 1). */
  groupOf(name: string): ParamGroup {
    return this.groups.get(name) ?? { lrScale: 1, decay: (this.params.get(name)?.rank ?? 0) > 1 };
  }

  /** The constants of update `t` (1-based) of parameter `name` at the scheduled learning rate `lr`. */
  coefficients(name: string, lr: number, t: number): AdamWKernelAttrs {
    const group = this.groupOf(name);
    const plr = lr * group.lrScale;
    return {
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      keep: 1 - plr * this.weightDecay,
      decay: group.decay && this.weightDecay > 0,
      bc2Sqrt: Math.sqrt(1 - this.beta2 ** t),
      step: plr / (1 - this.beta1 ** t),
    };
  }

  /**
   * Counts one update and returns its number t. apply() calls it; the data-parallel engine calls it
   * when its workers apply the update to the shared weights themselves (adamwArrays).
   */
  advance(): number {
    return ++this.step;
  }

  /**
   * One update with learning rate `lr` from gradients by parameter name. Parameters without a
   * gradient (frozen) are left untouched, their moments too.
   */
  apply(grads: Map<string, tf.Tensor> | tf.NamedTensorMap, lr: number): void {
    const g = grads instanceof Map ? grads : new Map(Object.entries(grads));
    const t = this.advance();
    for (const [name, grad] of g) {
      const p = this.params.get(name);
      if (!p) continue;
      const a = this.coefficients(name, lr, t);
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      if (grad.dtype === 'float32' && tf.getKernel(ADAMW_KERNEL, tf.getBackend())) {
        const [p2, m2, v2] = tf.engine().runKernel(ADAMW_KERNEL, { p, m, v, g: grad }, a as unknown as tf.NamedAttrMap) as tf.Tensor[];
        m.assign(m2);
        v.assign(v2);
        p.assign(p2);
        tf.dispose([p2, m2, v2]);
        continue;
      }
      tf.tidy(() => {
        const mNew = tf.add(tf.mul(m, a.beta1), tf.mul(grad, 1 - a.beta1));
        const vNew = tf.add(tf.mul(v, a.beta2), tf.mul(tf.square(grad), 1 - a.beta2));
        m.assign(mNew);
        v.assign(vNew);
        const decayed = a.decay ? tf.mul(p, a.keep) : p;
        const denom = tf.add(tf.div(tf.sqrt(vNew), a.bc2Sqrt), a.eps);
        p.assign(tf.sub(decayed, tf.mul(tf.div(mNew, denom), a.step)));
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

const f32 = Math.fround;

/**
 * One AdamW update in place on plain arrays (p, m, v and g of one length), with the float32
 * operations of adamw.wat and the composite in their order, so the same bits: the data-parallel
 * workers apply it to their slice of the shared weights (src/train/data_parallel).
 */
export function adamwArrays(p: Float32Array, m: Float32Array, v: Float32Array, g: ArrayLike<number>, a: AdamWKernelAttrs): void {
  const [b1, omb1, b2, omb2] = [f32(a.beta1), f32(1 - a.beta1), f32(a.beta2), f32(1 - a.beta2)];
  const [keep, bc2, eps, step] = [a.decay ? f32(a.keep) : 1, f32(a.bc2Sqrt), f32(a.eps), f32(a.step)];
  for (let i = 0; i < p.length; i++) {
    const gi = f32(g[i]);
    const mi = f32(f32(m[i] * b1) + f32(gi * omb1));
    const vi = f32(f32(v[i] * b2) + f32(f32(gi * gi) * omb2));
    m[i] = mi;
    v[i] = vi;
    p[i] = f32(f32(p[i] * keep) - f32(f32(mi / f32(f32(f32(Math.sqrt(vi)) / bc2) + eps)) * step));
  }
}
