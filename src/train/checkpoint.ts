/**
 * The training checkpoint: one safetensors file (the format of writeCheckpointFile) holding the model weights (`model.*`), the AdamW
 * moments (`opt.m.*`, `opt.v.*`), the EMA shadow (`ema.*`) and, in the header's metadata under
 * `convnext_train`, the epoch, step, optimizer step, classes, config and history. Written atomically,
 * so a kill mid-write keeps the previous checkpoint; stale temp files of killed runs are removed.
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { ConvNeXtError } from '../errors';
import { ConvNeXtConfig } from '../model/configs';
import { ConvNeXt } from '../model/convnext';
import { removeStaleTemps } from '../util/fs';
import { TensorArrays, readTensors } from '../util/tensors';
import { readSafetensors, writeSafetensors } from '../../weights-converter/safetensors';
import { AdamW } from './adamw';
import { ModelEma } from './ema';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';

/** What the checkpoint's metadata records besides tensors. */
export interface CheckpointMeta<R = unknown> {
  epoch: number;
  step: number;
  optStep: number;
  classes: string[];
  config: ConvNeXtConfig;
  history: R[];
}

/**
 * The file format shared by fine-tuning and FCMAE pretraining: named groups of variables under a
 * prefix each (`model.`, `opt.m.`, ...) and a JSON record under one metadata key. Written atomically
 * (a kill mid-write keeps the previous file); stale temp files of killed runs are removed first.
 */
export async function writeCheckpointFile(file: string, groups: Record<string, Map<string, tf.Variable>>, metaKey: string, meta: unknown): Promise<void> {
  removeStaleTemps(file);
  const t: TensorArrays = new Map();
  for (const [prefix, vars] of Object.entries(groups)) for (const [k, v] of await readTensors(vars)) t.set(`${prefix}${k}`, v);
  writeSafetensors(file, t, { [metaKey]: JSON.stringify(meta) });
}

/** Reads a checkpoint file: its record under `metaKey` and its tensors by group prefix (the caller disposes them). */
export function readCheckpointFile<M>(file: string, metaKey: string, what: string): { meta: M; group: (prefix: string) => Map<string, tf.Tensor> } {
  const { tensors, metadata } = readSafetensors(file);
  const meta = JSON.parse(metadata[metaKey] ?? 'null') as M | null;
  if (!meta) throw new ConvNeXtError(`${file}: not a convnext-tfjs ${what} checkpoint`);
  const group = (prefix: string) => {
    const m = new Map<string, tf.Tensor>();
    for (const [k, v] of tensors) if (k.startsWith(prefix)) m.set(k.slice(prefix.length), tf.tensor(v.data as Float32Array, v.shape));
    return m;
  };
  return { meta, group };
}

/** Writes `<out>/checkpoint.safetensors` atomically. */
export async function saveCheckpoint<R>(
  out: string,
  model: ConvNeXt,
  opt: AdamW,
  ema: ModelEma | null,
  meta: Omit<CheckpointMeta<R>, 'optStep'>,
): Promise<void> {
  const st = opt.state();
  const groups = { 'model.': model.getWeights(), 'opt.m.': st.m, 'opt.v.': st.v, ...(ema ? { 'ema.': ema.shadow } : {}) };
  await writeCheckpointFile(path.join(out, CHECKPOINT_FILE), groups, 'convnext_train', { ...meta, optStep: st.step });
}

/** Restores weights, optimizer state and EMA from `<out>/checkpoint.safetensors`; returns its metadata. */
export function loadCheckpoint<R>(out: string, model: ConvNeXt, opt: AdamW, ema: ModelEma | null): CheckpointMeta<R> {
  const file = path.join(out, CHECKPOINT_FILE);
  const { meta, group } = readCheckpointFile<CheckpointMeta<R>>(file, 'convnext_train', 'training');
  const w = group('model.');
  const m = group('opt.m.');
  const v = group('opt.v.');
  const e = group('ema.');
  try {
    model.loadWeights(w);
    opt.loadState(meta.optStep, m, v);
    if (ema) {
      if (e.size === 0) throw new ConvNeXtError(`${file}: has no EMA weights but EMA is on`);
      for (const [k, t] of e) ema.shadow.get(k)?.assign(t);
    }
  } finally {
    tf.dispose([...w.values(), ...m.values(), ...v.values(), ...e.values()]);
  }
  return meta;
}
