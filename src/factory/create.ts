/**
 * createModel: timm's create_model for ConvNeXt.
 *
 *   createModel('convnext_tiny', { numClasses: 10, dropPathRate: 0.1 })   // architecture, official init
 *   createModel('convnext_tiny.fb_in1k')                                  // the tag's architecture and head size, random init
 *   createModel({ version: 2, depths: [2, 2, 6, 2], dims: [40, 80, 160, 320] })
 *   createModel('convnext_tiny', { weights })                             // from tensors (timm key names, TF.js layouts)
 *   await createModel('convnext_tiny', { pretrained: true, numClasses: 10 })  // default tag's weights, new head
 *
 * Names follow the one rule (names.ts). With `pretrained` the weights are fetched through loadModel,
 * so the call returns a Promise (downloads are asynchronous in JavaScript); without it, it is synchronous.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../errors';
import { ConfigOverrides, ConvNeXtConfig, resolveConfig } from '../model/configs';
import { ConvNeXt } from '../model/convnext';
import { getPretrained } from '../zoo/registry';
import { LoadModelOptions, loadModel } from './load';
import { parseModelName } from './names';

export interface CreateModelOptions extends ConfigOverrides {
  /** Seed of the weight init (deterministic across runs and backends' RNG). Default 0. */
  seed?: number;
  /** 'random' (the official init, default) or 'zeros' (fast; for weights loaded right after). */
  init?: 'random' | 'zeros';
  /** Weights to start from (every parameter; names and shapes checked). The model takes over their data. */
  weights?: Map<string, tf.Tensor>;
  /** Download (or take from the cache) the name's pretrained weights: the tag, or a bare architecture's default tag. */
  pretrained?: boolean;
  /** With pretrained: options of the download (cache, offline, mirror, progress). */
  load?: Omit<LoadModelOptions, 'numClasses' | 'dropPathRate' | 'seed'>;
}

type NameOrConfig = Parameters<typeof resolveConfig>[0];

function configOf(nameOrConfig: NameOrConfig, overrides: ConfigOverrides): ConvNeXtConfig {
  if (typeof nameOrConfig !== 'string') return resolveConfig(nameOrConfig, overrides);
  const name = parseModelName(nameOrConfig, false);
  if (name.kind === 'arch') return resolveConfig(name.arch, overrides);
  if (name.kind === 'pretrained') return resolveConfig(name.arch, { numClasses: getPretrained(name.tag).numClasses, ...overrides });
  throw new ConfigError(`createModel('${nameOrConfig}'): a path or URL holds weights; use loadModel('${nameOrConfig}')`);
}

async function createPretrained(nameOrConfig: NameOrConfig, opts: CreateModelOptions): Promise<ConvNeXt> {
  if (typeof nameOrConfig !== 'string') throw new ConfigError('createModel: pretrained needs a model name, not a config');
  const { seed, numClasses, dropPathRate, load } = opts;
  for (const k of ['init', 'weights'] as const) if (opts[k] !== undefined) throw new ConfigError(`createModel: pretrained and ${k} exclude each other`);
  return (await loadModel(nameOrConfig, { ...load, numClasses, dropPathRate, seed })).model;
}

export function createModel(nameOrConfig: NameOrConfig, opts: CreateModelOptions & { pretrained: true }): Promise<ConvNeXt>;
export function createModel(nameOrConfig: NameOrConfig, opts?: CreateModelOptions & { pretrained?: false }): ConvNeXt;
export function createModel(nameOrConfig: NameOrConfig, opts: CreateModelOptions = {}): ConvNeXt | Promise<ConvNeXt> {
  if (opts.pretrained) return createPretrained(nameOrConfig, opts);
  const { seed, init, weights, pretrained: _pretrained, load: _load, ...overrides } = opts;
  if (weights && init) throw new ConfigError('createModel: init and weights exclude each other');
  return new ConvNeXt(configOf(nameOrConfig, overrides), seed ?? 0, weights ?? init ?? 'random');
}
