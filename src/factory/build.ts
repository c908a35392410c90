/**
 * buildModel: the synchronous core of createModel (an architecture, tag or config, with the official
 * init or given weights; no downloads). The browser build exports it as createModel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../errors';
import { ConfigOverrides, ConvNeXtConfig, resolveConfig } from '../model/configs';
import { ConvNeXt } from '../model/convnext';
import { getPretrained } from '../zoo/registry';
import { parseModelName } from './names';

export interface BuildModelOptions extends ConfigOverrides {
  /** Seed of the weight init (deterministic across runs and backends' RNG). Default 0. */
  seed?: number;
  /** 'random' (the official init, default) or 'zeros' (fast; for weights loaded right after). */
  init?: 'random' | 'zeros';
  /** Weights to start from (every parameter; names and shapes checked). The model takes over their data. */
  weights?: Map<string, tf.Tensor>;
}

export type NameOrConfig = Parameters<typeof resolveConfig>[0];

function configOf(nameOrConfig: NameOrConfig, overrides: ConfigOverrides): ConvNeXtConfig {
  if (typeof nameOrConfig !== 'string') return resolveConfig(nameOrConfig, overrides);
  const name = parseModelName(nameOrConfig, false);
  if (name.kind === 'arch') return resolveConfig(name.arch, overrides);
  if (name.kind === 'pretrained') return resolveConfig(name.arch, { numClasses: getPretrained(name.tag).numClasses, ...overrides });
  throw new ConfigError(`createModel('${nameOrConfig}'): a path or URL holds weights; use loadModel('${nameOrConfig}')`);
}

/** A model of an architecture, tag (its head size) or config; random (seeded official) init unless weights are given. */
export function buildModel(nameOrConfig: NameOrConfig, opts: BuildModelOptions = {}): ConvNeXt {
  const { seed, init, weights, ...overrides } = opts;
  if (weights && init) throw new ConfigError('createModel: init and weights exclude each other');
  return new ConvNeXt(configOf(nameOrConfig, overrides), seed ?? 0, weights ?? init ?? 'random');
}
