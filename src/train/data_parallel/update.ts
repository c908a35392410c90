/**
 * The optimizer step of a data-parallel run, applied by the workers themselves (engine.ts): after
 * every replica has written its gradient, worker k of w takes slice k of the flat weight buffer
 * (every variable back to back) and, for the elements of that slice, sums the replicas' gradients
 * into the step's mean, applies AdamW to the shared weights and moments, then the EMA to the shared
 * shadow. The slices are disjoint, so the workers need no locks, and the main thread's serial part
 * of a step shrinks to two messages. The state lives in one shared WebAssembly.Memory where it can
 * (our SIMD kernels run on it in place: backend/wasm_simd/shared_update.ts); otherwise on plain
 * SharedArrayBuffers with the same float32 operations in JS (adamwArrays, emaArrays): the same bits.
 *
 *   main thread: AdamW.coefficients per parameter (the one place that knows groups, schedule and
 *                bias correction) -> UpdateOrder -> every worker: updateSlice(layout, order, k, w)
 *
 * Layouts: float32, TF.js layouts (NHWC convs), the model's parameter names.
 */
import { AdamWKernelAttrs } from '../../backend/wasm_simd/adamw';
import { UpdateKernels, sharedKernelMemory } from '../../backend/wasm_simd/shared_update';
import { SharedParam, viewOf } from '../../parallel/shared_weights';
import { adamwArrays } from '../adamw';
import { emaArrays } from '../ema';

/** Where a run's shared state lives (plain data: it travels to the workers; the buffers are shared). */
export interface UpdateLayout {
  /** Every variable, back to back on one SharedArrayBuffer (the replicas load them from here). */
  weights: SharedParam[];
  /** For trainable parameter j (gradient order): its index in `weights`. */
  trainable: number[];
  /** [worker][j]: each replica's gradient region. */
  grads: SharedParam[][];
  /** AdamW's first and second moments, [j]. */
  m: SharedParam[];
  v: SharedParam[];
  /** The EMA shadow, laid out as `weights`; null without EMA. */
  ema: SharedParam[] | null;
  /** [worker]: room for the largest trainable parameter (the summed gradient of a slice). */
  scratch: SharedParam[];
  /** The shared WebAssembly.Memory every buffer above lies in (updateKernels), or null: plain SharedArrayBuffers. */
  memory: object | null;
}

/** One replica's part of the step: its region holds the mean gradient over its share. */
export interface GradPart {
  /** The region's weight in the step's sum (its share's sample count); 1 / (step samples) is applied on top. */
  scale: number;
  /** Trainable indices j the replica produced no gradient for (its region is stale there). */
  missing: number[];
}

/** What every worker applies to its slice. */
export interface UpdateOrder {
  /** Per trainable parameter j; null: the step had no sample, so no AdamW update (the EMA still moves). */
  coefficients: (AdamWKernelAttrs | null)[] | null;
  /** The step's sample count (the mean's divisor). */
  n: number;
  parts: GradPart[];
  emaDecay: number | null;
}

/** Elements per cache line: slices start on one, so two workers never write the same line. */
const LINE = 16;

/** Slice k of w of [0, total): contiguous, cache-line aligned, as even as that allows. */
export function sliceOf(total: number, k: number, w: number): [number, number] {
  const cut = (i: number) => (i >= w ? total : Math.min(total, Math.floor((i * total) / w / LINE) * LINE));
  return [cut(k), cut(k + 1)];
}

/** A float32 array to lay out. */
export interface SharedSpec {
  name: string;
  shape: number[];
}

/**
 * Groups of float32 views laid out on one new shared buffer, each view on a 64-byte bound: the
 * buffer of a shared WebAssembly.Memory where one can serve (the update kernels run on it), else a
 * plain SharedArrayBuffer (always, with kernelMemory false).
 */
function allocateShared(groups: SharedSpec[][], kernelMemory: boolean): { views: SharedParam[][]; memory: object | null } {
  const padded = (n: number) => Math.ceil(n / 16) * 16;
  const total = groups.flat().reduce((a, s) => a + padded(sizeOf(s.shape)), 0);
  const kernel = kernelMemory ? sharedKernelMemory(total * 4) : null;
  const buffer = kernel?.buffer ?? new SharedArrayBuffer(total * 4);
  let offset = 0;
  const views = groups.map((g) =>
    g.map((s) => {
      const p: SharedParam = { name: s.name, shape: [...s.shape], buffer, byteOffset: offset * 4, length: sizeOf(s.shape) };
      offset += padded(p.length);
      return p;
    }),
  );
  return { views, memory: kernel?.memory ?? null };
}

/**
 * A zeroed layout for `variables` (every one, in order), of which `trainable` (indices) train, for
 * `workers` replicas, with an EMA shadow or not; `kernelMemory` false: plain SharedArrayBuffers.
 */
export function createUpdateLayout(variables: SharedSpec[], trainable: number[], workers: number, ema: boolean, kernelMemory = true): UpdateLayout {
  const specs = trainable.map((i) => variables[i]);
  const largest = Math.max(1, ...specs.map((s) => sizeOf(s.shape)));
  const groups = [
    variables,
    specs,
    specs,
    ema ? variables : [],
    ...Array.from({ length: workers }, () => specs),
    [...Array(workers).keys()].map((k) => ({ name: `scratch${k}`, shape: [largest] })),
  ];
  const { views, memory } = allocateShared(groups, kernelMemory);
  return {
    weights: views[0],
    trainable,
    m: views[1],
    v: views[2],
    ema: ema ? views[3] : null,
    grads: views.slice(4, 4 + workers),
    scratch: views[4 + workers],
    memory,
  };
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((x, y) => x * y, 1);
}

const f32 = Math.fround;

/** y = a x (init), else y += a x, in float32 as axpy_f32 computes it. */
function axpyArrays(y: Float32Array, x: Float32Array, a: number, init: boolean): void {
  const af = f32(a);
  if (init) for (let e = 0; e < y.length; e++) y[e] = f32(x[e] * af);
  else for (let e = 0; e < y.length; e++) y[e] = f32(y[e] + f32(x[e] * af));
}

/**
 * Applies `order` to the elements of slice k of w (see the header), with `kernels` on the layout's
 * memory when given (the same bits either way).
 */
export function updateSlice(l: UpdateLayout, order: UpdateOrder, k: number, w: number, kernels: UpdateKernels | null): void {
  const base = l.weights[0]?.byteOffset ?? 0;
  const last = l.weights[l.weights.length - 1];
  const total = last ? (last.byteOffset - base) / 4 + last.length : 0;
  const [a, b] = sliceOf(total, k, w);
  const trainableOf = new Map(l.trainable.map((wi, j) => [wi, j]));
  const at = (p: SharedParam, lo: number) => p.byteOffset + 4 * lo;
  for (let i = 0; i < l.weights.length; i++) {
    const p = l.weights[i];
    const start = (p.byteOffset - base) / 4;
    const lo = Math.max(a, start) - start;
    const hi = Math.min(b, start + p.length) - start;
    if (lo >= hi) continue;
    const n = hi - lo;
    const j = trainableOf.get(i);
    const coeffs = j === undefined ? null : (order.coefficients?.[j] ?? null);
    const from = j === undefined || !coeffs ? [] : order.parts.map((part, r) => ({ part, r })).filter(({ part }) => !part.missing.includes(j));
    if (j !== undefined && coeffs && from.length > 0) {
      const g = l.scratch[k];
      from.forEach(({ part, r }, s) => {
        const region = l.grads[r][j];
        if (kernels) kernels.axpy(g.byteOffset, at(region, lo), n, part.scale / order.n, s === 0);
        else axpyArrays(viewOf(g).subarray(0, n), viewOf(region).subarray(lo, hi), part.scale / order.n, s === 0);
      });
      if (kernels) kernels.adamw(at(p, lo), at(l.m[j], lo), at(l.v[j], lo), g.byteOffset, n, coeffs);
      else adamwArrays(viewOf(p).subarray(lo, hi), viewOf(l.m[j]).subarray(lo, hi), viewOf(l.v[j]).subarray(lo, hi), viewOf(g).subarray(0, n), coeffs);
    }
    if (l.ema && order.emaDecay !== null) {
      if (kernels) kernels.ema(at(l.ema[i], lo), at(p, lo), n, order.emaDecay);
      else emaArrays(viewOf(l.ema[i]).subarray(lo, hi), viewOf(p).subarray(lo, hi), order.emaDecay);
    }
  }
}
