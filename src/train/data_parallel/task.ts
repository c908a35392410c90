/**
 * The contract between the data-parallel engine (engine.ts) and what it trains (a classifier,
 * classify_task.ts; FCMAE, src/fcmae/parallel_task.ts), and the rules that make a step independent
 * of the worker count.
 *
 * A global micro-batch is the epoch order's slice [b * B, (b + 1) * B). Its samples are numbered by
 * their position in that slice (the *global sample index*); each replica takes an aligned share of
 * whole pairs (shareRange), decodes and augments it itself, and everything random about a sample is
 * keyed by what identifies it, never by the worker it lands on:
 *   augmentation  (seed, epoch, sample key)              dataset.ts decodeChunk
 *   drop path     (seed, step, micro-batch, global index) one draw per block, in block order
 *   mixup/cutmix  one draw per global micro-batch from (seed, step, micro-batch); sample i is paired
 *                 with i xor 1 (timm's 'pair' partners within aligned pairs, so a pair never
 *                 straddles two shares); an unpaired or skipped partner leaves the sample unmixed
 *   FCMAE masks   (seed, epoch, micro-batch, global index)
 * A share reports the gradient of its mean loss and its sample count; the step's gradient is the
 * count-weighted mean, i.e. the mean over every sample of the step (all micro-batches).
 */
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';

/** One micro-batch of a step: `batch` indexes the epoch's micro-batches, `micro` counts within the step. */
export interface MicroRef {
  epoch: number;
  /** Optimizer step (global, across epochs). */
  step: number;
  micro: number;
  batch: number;
}

/** One optimizer step: its micro-batches (accumSteps of them). */
export interface StepRef {
  epoch: number;
  step: number;
  batches: number[];
}

/** Optimizer step `step` (global) of a run with `stepsPerEpoch` steps of `accum` micro-batches each. */
export function stepRef(step: number, stepsPerEpoch: number, accum: number): StepRef {
  const epoch = Math.floor(step / stepsPerEpoch);
  const i = step - epoch * stepsPerEpoch;
  return { epoch, step, batches: Array.from({ length: accum }, (_, m) => i * accum + m) };
}

/** The micro-batches of a step, in order. */
export function microRefs(ref: StepRef): MicroRef[] {
  return ref.batches.map((batch, micro) => ({ epoch: ref.epoch, step: ref.step, micro, batch }));
}

/** A share's forward/backward: gradients of its mean loss by parameter name, and its figures. */
export interface ShareResult {
  /** Empty when the share had no samples (n 0). */
  grads: Map<string, tf.Tensor>;
  n: number;
  /** Sum of the per-sample losses. */
  lossSum: number;
  /** Correct top-1 predictions (classification; 0 otherwise). */
  correct: number;
}

/**
 * The count-weighted mean of share results that arrive one after another (a step's micro-batches,
 * a share's chunks): gradient (sum of n_i x g_i) / n, the mean over every sample; loss sums and
 * correct counts added. Each result's gradients are disposed as they are added (only the running
 * sum stays), and a lone result passes through unchanged.
 */
export class ResultMean {
  private first: ShareResult | null = null;
  private sum: Map<string, tf.Tensor> | null = null;
  private n = 0;
  private lossSum = 0;
  private correct = 0;

  add(r: ShareResult): void {
    this.n += r.n;
    this.lossSum += r.lossSum;
    this.correct += r.correct;
    if (!this.first && !this.sum) {
      this.first = r;
      return;
    }
    if (!this.sum) {
      this.sum = new Map();
      this.addScaled(this.first!);
      this.first = null;
    }
    this.addScaled(r);
  }

  private addScaled(r: ShareResult): void {
    for (const [k, g] of r.grads) {
      const prev = this.sum!.get(k);
      this.sum!.set(
        k,
        tf.tidy(() => (prev ? tf.add(prev, tf.mul(g, r.n)) : tf.mul(g, r.n))),
      );
      tf.dispose(prev ? [prev, g] : [g]);
    }
  }

  /** The mean so far (the caller owns its gradients; this object is spent). */
  result(): ShareResult {
    const figures = { n: this.n, lossSum: this.lossSum, correct: this.correct };
    if (this.first) return { ...this.first, ...figures };
    const grads = new Map<string, tf.Tensor>();
    for (const [k, g] of this.sum ?? []) {
      grads.set(k, tf.mul(g, 1 / this.n)); // only results with samples have gradients: n > 0
      g.dispose();
    }
    this.sum = null;
    return { grads, ...figures };
  }

  /** Disposes whatever it holds (after a failure). */
  dispose(): void {
    tf.dispose([...(this.first?.grads.values() ?? []), ...(this.sum?.values() ?? [])]);
    this.first = null;
    this.sum = null;
  }
}

/** What a replica does; L is its decoded share. */
export interface ReplicaTask<L = unknown> {
  /** Every variable by name: the layout of the shared weights. */
  readonly variables: Map<string, tf.Variable>;
  /** Decodes and augments the share [start, end) of a micro-batch (global sample indices). */
  load(ref: MicroRef, range: readonly [number, number]): Promise<L>;
  /** Forward and backward on a loaded share; the caller disposes the gradients. */
  compute(loaded: L, ref: MicroRef): Promise<ShareResult>;
  dispose(): void;
}

/** Called by a task for an image it could not use. */
export type SkipHook = (file: string, reason: string) => void;

/**
 * Worker k's share of a micro-batch of n samples among w workers: whole aligned pairs, as even as
 * possible (n odd: the last share ends with the unpaired sample). Empty when k has no pair.
 */
export function shareRange(n: number, k: number, w: number): [number, number] {
  const pairs = Math.ceil(n / 2);
  const a = Math.min(n, 2 * Math.floor((k * pairs) / w));
  const b = Math.min(n, 2 * Math.floor(((k + 1) * pairs) / w));
  return [a, b];
}

/**
 * Mixup/CutMix partner of each sample of a decoded share, by local index: the sample whose global
 * index is (global xor 1) when it is in the share, else itself.
 */
export function pairPartners(positions: readonly number[]): (i: number) => number {
  const local = new Map(positions.map((g, i) => [g, i]));
  return (i) => local.get(positions[i] ^ 1) ?? i;
}

/**
 * Drop-path keep masks for a share: [block][sample] 0/1, each sample's draws from its own generator
 * keyed by (seed, step, micro-batch, global index), one uniform per block in model order (a block of
 * rate 0 keeps everything). `rates` are the per-block rates in model order.
 */
export function dropPathKeepMasks(rates: readonly number[], positions: readonly number[], seed: number, ref: MicroRef): number[][] {
  const masks = rates.map(() => new Array<number>(positions.length));
  positions.forEach((g, j) => {
    const rng = seedrandom(`droppath-${seed}-${ref.step}-${ref.micro}-${g}`);
    rates.forEach((r, b) => (masks[b][j] = rng() < 1 - r ? 1 : 0));
  });
  return masks;
}
