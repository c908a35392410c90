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
import { ConfigError } from '../errors';
import { ConvNeXt } from '../model/convnext';
import { BuildModelOptions, NameOrConfig, buildModel } from './build';
import { LoadModelOptions, loadModel } from './load';

export interface CreateModelOptions extends BuildModelOptions {
  /** Download (or take from the cache) the name's pretrained weights: the tag, or a bare architecture's default tag. */
  pretrained?: boolean;
  /** With pretrained: options of the download (cache, offline, mirror, progress). */
  load?: Omit<LoadModelOptions, 'numClasses' | 'dropPathRate' | 'seed'>;
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
  const { pretrained: _pretrained, load: _load, ...rest } = opts;
  return buildModel(nameOrConfig, rest);
}
