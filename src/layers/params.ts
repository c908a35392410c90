/**
 * Parameter store: every weight of a model is a named tf.Variable, created once (outside any tidy)
 * and owned here until dispose(). Names follow timm's state-dict keys; layouts are TF.js's (NHWC
 * convs: [kh, kw, in, out]; depthwise [kh, kw, C, 1]; Linear [in, out]).
 */
import * as tf from '@tensorflow/tfjs-core';
import { WeightsError } from '../errors';

/** How a parameter is initialised (the official init: trunc-normal std 0.02 weights, zero biases). */
export type Init = { kind: 'truncNormal'; std: number } | { kind: 'constant'; value: number };

export const zeros: Init = { kind: 'constant', value: 0 };
export const ones: Init = { kind: 'constant', value: 1 };
export const truncNormal002: Init = { kind: 'truncNormal', std: 0.02 };

/** Facts about one parameter that training needs. */
export interface ParamInfo {
  name: string;
  shape: number[];
  /** False for norms, biases, layer scale and GRN (no weight decay, as in the official recipe). */
  weightDecay: boolean;
}

/** A parameter declared by a module: what it is and how it starts. */
export interface ParamSpec extends ParamInfo {
  init: Init;
}

/** Declares a parameter (weights decay, 1-D parameters do not, as in the official recipe). */
export function spec(name: string, shape: number[], init: Init): ParamSpec {
  return { name, shape, init, weightDecay: shape.length > 1 };
}

/** One parameter of a module's table: name under the module's prefix, TF.js shape, init. */
export type ParamEntry = readonly [suffix: string, shape: number[], init: Init];

/** A module's parameters, declared once: field -> entry, or null where the options leave it out. */
export type ParamTable = Readonly<Record<string, ParamEntry | null>>;

/** The variables a table binds to: a field whose entry may be null may be null. */
export type BoundParams<T extends ParamTable> = { readonly [K in keyof T]: null extends T[K] ? tf.Variable | null : tf.Variable };

/** The specs of a table's present entries, in declaration order (names `${prefix}.${suffix}`). */
export function tableSpecs(prefix: string, table: ParamTable): ParamSpec[] {
  return Object.values(table).flatMap((e) => (e ? [spec(`${prefix}.${e[0]}`, e[1], e[2])] : []));
}

/** Binds each field of a table to its variable in `store` (null for absent entries). */
export function bindParams<T extends ParamTable>(store: ParamStore, prefix: string, table: T): BoundParams<T> {
  const out: Record<string, tf.Variable | null> = {};
  for (const [field, e] of Object.entries(table)) out[field] = e ? store.get(`${prefix}.${e[0]}`) : null;
  return out as BoundParams<T>;
}

/** 32-bit FNV-1a of the name mixed with the model seed: each parameter's init is independent of creation order. */
function paramSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function initialValue(shape: number[], init: Init, seed: number): tf.Tensor {
  if (init.kind === 'constant') return tf.fill(shape, init.value);
  // timm/FB trunc_normal_(std=.02) truncates at +-2 absolute, i.e. at 100 standard deviations:
  // no sample ever falls outside, so it is a plain normal draw.
  return tf.randomNormal(shape, 0, init.std, 'float32', seed);
}

export class ParamStore {
  private readonly vars = new Map<string, tf.Variable>();
  private readonly infos = new Map<string, ParamInfo>();

  /**
   * @param seed     seed of the random init
   * @param zeroInit create every parameter as zeros (weights about to be loaded: skips the random draw)
   * @param initial  values to start from instead (checked with checkWeightsFit first): each variable
   *                 takes over its tensor's data, no copy (the caller may dispose its tensors after)
   */
  constructor(
    readonly seed = 0,
    readonly zeroInit = false,
    private readonly initial?: Map<string, tf.Tensor>,
  ) {}

  /** Creates the trainable variable a spec declares (`fresh`: always the real init, e.g. a new head). */
  add(p: ParamSpec, fresh = false): tf.Variable {
    const { name, shape, init, weightDecay } = p;
    if (this.vars.has(name)) throw new Error(`ParamStore: duplicate parameter ${name}`);
    const given = fresh ? undefined : this.initial?.get(name);
    if (given && !tf.util.arraysEqual(given.shape, shape)) throw new Error(`ParamStore: ${name} is [${given.shape}], expected [${shape}]`);
    const value = given
      ? given.dtype === 'float32'
        ? given // shared, not copied (clone() copies on wasm); the caller disposes its own tensor
        : tf.cast(given, 'float32')
      : this.zeroInit && !fresh
        ? tf.zeros(shape)
        : initialValue(shape, init, paramSeed(this.seed, name));
    const v = tf.variable(value, true, `${name}_${tf.util.now().toString(36)}_${this.vars.size}`);
    if (value !== given) value.dispose();
    this.vars.set(name, v);
    this.infos.set(name, { name, shape: [...shape], weightDecay });
    return v;
  }

  /** Removes and disposes every parameter whose name starts with `prefix`. */
  remove(prefix: string): void {
    for (const name of [...this.vars.keys()]) {
      if (name.startsWith(prefix)) {
        this.vars.get(name)!.dispose();
        this.vars.delete(name);
        this.infos.delete(name);
      }
    }
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`ParamStore: no parameter ${name}`);
    return v;
  }

  has(name: string): boolean {
    return this.vars.has(name);
  }

  names(): string[] {
    return [...this.vars.keys()];
  }

  info(name: string): ParamInfo {
    const i = this.infos.get(name);
    if (!i) throw new Error(`ParamStore: no parameter ${name}`);
    return i;
  }

  /** Total number of scalar parameters. */
  count(): number {
    let n = 0;
    for (const v of this.vars.values()) n += v.size;
    return n;
  }

  /** The live variables by name (not copies: do not dispose them). */
  variables(): Map<string, tf.Variable> {
    return new Map(this.vars);
  }

  /**
   * Assigns values by name. With `strict` (the default), the set of names must equal the model's
   * exactly, as PyTorch's load_state_dict(strict=True); shape mismatches are always errors. Nothing
   * is assigned unless everything fits.
   */
  assign(values: Map<string, tf.Tensor> | Record<string, tf.Tensor>, strict = true): void {
    const map = values instanceof Map ? values : new Map(Object.entries(values));
    checkWeightsFit(new Map([...this.vars].map(([k, v]) => [k, v.shape])), map, strict);
    for (const [k, t] of map) {
      const v = this.vars.get(k);
      if (v) v.assign(t.dtype === 'float32' ? t : tf.tidy(() => tf.cast(t, 'float32')));
    }
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    this.infos.clear();
  }
}

/** What in a set of weights does not fit a model. */
export interface WeightsFit {
  /** Parameters the weights lack. */
  missing: string[];
  /** Weights the model has no parameter for. */
  unexpected: string[];
  /** `weight: [its shape] vs model [shape]`. */
  mismatched: string[];
}

/**
 * Compares weights with a model's parameters, as a strict load_state_dict would: the one check behind
 * loading weights (ParamStore.assign, new ConvNeXt(config, seed, weights), shareWeights, the converter).
 * @param params   the model's parameter shapes by name
 * @param describe how a weight is named in the report (the converter: the checkpoint's own key)
 */
export function weightsFit(
  params: Map<string, readonly number[]>,
  weights: Map<string, { shape: readonly number[] }>,
  describe: (name: string) => string = (n) => n,
): WeightsFit {
  const missing = [...params.keys()].filter((k) => !weights.has(k));
  const unexpected = [...weights.keys()].filter((k) => !params.has(k)).map(describe);
  const mismatched: string[] = [];
  for (const [k, t] of weights) {
    const shape = params.get(k);
    if (shape && !tf.util.arraysEqual([...shape], [...t.shape])) mismatched.push(`${describe(k)}: [${t.shape.join(', ')}] vs model [${shape.join(', ')}]`);
  }
  return { missing, unexpected, mismatched };
}

/** `missing N: name [shape], ... | unexpected N: ... | shape mismatch N: ...`, the parts that are not empty. */
export function fitReport(f: WeightsFit, params: Map<string, readonly number[]>, shown = REPORT_SHOWN): string {
  const list = (items: string[], sep: string) => items.slice(0, shown).join(sep) + (items.length > shown ? `${sep}... and ${items.length - shown} more` : '');
  const parts: string[] = [];
  if (f.missing.length)
    parts.push(
      `missing ${f.missing.length}: ${list(
        f.missing.map((k) => `${k} [${(params.get(k) ?? []).join(', ')}]`),
        ', ',
      )}`,
    );
  if (f.unexpected.length) parts.push(`unexpected ${f.unexpected.length}: ${list(f.unexpected, ', ')}`);
  if (f.mismatched.length) parts.push(`shape mismatch ${f.mismatched.length}: ${list(f.mismatched, '; ')}`);
  return parts.join(' | ');
}

/** Names listed per kind in a fit report before "... and N more" (a wrong layout mismatches every key). */
export const REPORT_SHOWN = 8;

/**
 * Throws a WeightsError when the weights do not fit: any shape mismatch, and (strict) any missing or
 * unexpected name.
 */
export function checkWeightsFit(
  params: Map<string, readonly number[]>,
  weights: Map<string, { shape: readonly number[] }>,
  strict = true,
  extra: WeightsFit['mismatched'] = [],
): void {
  const f = weightsFit(params, weights);
  f.mismatched.push(...extra);
  if (f.mismatched.length || (strict && (f.missing.length || f.unexpected.length))) {
    throw new WeightsError(`weights do not fit the model: ${fitReport(f, params)}`, f.missing, f.unexpected, f.mismatched);
  }
}
