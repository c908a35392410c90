/**
 * Choosing the state dict inside a checkpoint's root object: a dict of tensors as is, else the one
 * under a wrapper key (the official FB/FB2 scripts save {'model', 'model_ema', 'optimizer', 'args',
 * ...}; timm and others use 'state_dict', 'module', 'state_dict_ema'), with DataParallel's
 * 'module.' prefix removed, as timm's `clean_state_dict` does. No tensor is read here.
 */
import { CheckpointError } from '../errors';
import { TensorRef } from '../pickle/torch_rebuild';
import { PyDict, PyFloat, PyValue, typeName } from '../pickle/values';

/** The state dict chosen from a checkpoint's root object. */
export interface SelectedStateDict {
  entries: [string, TensorRef][];
  wrapper: string | null;
  otherKeys: string[];
  strippedPrefix: string | null;
}

/** Wrapper keys tried in order when none is given. */
export const WRAPPER_KEYS: readonly string[] = ['model', 'state_dict', 'model_ema', 'module', 'state_dict_ema'];

function keyText(k: PyValue): string {
  if (k instanceof PyFloat) return k.repr();
  return typeof k === 'string' ? k : typeof k === 'number' || typeof k === 'bigint' ? String(k) : `<${typeName(k)}>`;
}

function tensorCount(d: PyValue | undefined): number {
  if (!(d instanceof PyDict)) return 0;
  let n = 0;
  for (const v of d.map.values()) if (v instanceof TensorRef) n++;
  return n;
}

/**
 * Unwrap a checkpoint: a dict of tensors is used as is; otherwise the state dict under
 * `wrapperKey`, or the first of WRAPPER_KEYS holding tensors. A 'module.' prefix on every key is
 * removed. Non-tensor values are listed in otherKeys (inside the wrapper as 'wrapper.key').
 */
export function selectStateDict(root: PyValue, file: string, wrapperKey?: string): SelectedStateDict {
  if (!(root instanceof PyDict)) {
    throw new CheckpointError(file, `top-level object is ${typeName(root)}, expected a dict of tensors (a state dict)`);
  }
  const topKeys = [...root.map.keys()].map(keyText);
  let dict: PyDict = root;
  let wrapper: string | null = null;
  if (wrapperKey !== undefined) {
    const v = root.map.get(wrapperKey);
    if (v === undefined) {
      throw new CheckpointError(file, `wrapper key '${wrapperKey}' not found; top-level keys: ${topKeys.join(', ') || '(none)'}`);
    }
    if (!(v instanceof PyDict)) throw new CheckpointError(file, `'${wrapperKey}' holds ${typeName(v)}, not a state dict`);
    dict = v;
    wrapper = wrapperKey;
  } else if (tensorCount(root) !== root.map.size || root.map.size === 0) {
    for (const k of WRAPPER_KEYS) {
      const v = root.map.get(k);
      if (v instanceof PyDict && tensorCount(v) > 0) {
        dict = v;
        wrapper = k;
        break;
      }
    }
    if (wrapper === null && tensorCount(root) === 0 && root.map.size > 0) {
      throw new CheckpointError(
        file,
        `no state dict found: top-level keys are ${topKeys.join(', ')}; none of ${WRAPPER_KEYS.join(', ')} holds a dict of tensors`,
      );
    }
  }
  const otherKeys = wrapper === null ? [] : topKeys.filter((k) => k !== wrapper);
  const entries: [string, TensorRef][] = [];
  for (const [k, v] of dict.map) {
    if (!(v instanceof TensorRef)) {
      otherKeys.push(wrapper === null ? keyText(k) : `${wrapper}.${keyText(k)}`);
      continue;
    }
    if (typeof k !== 'string') throw new CheckpointError(file, `state dict key ${keyText(k)} (${typeName(k)}) is not a string`);
    entries.push([k, v]);
  }
  let strippedPrefix: string | null = null;
  if (entries.length > 0 && entries.every(([k]) => k.startsWith('module.'))) {
    strippedPrefix = 'module.';
    for (const e of entries) e[0] = e[0].slice('module.'.length);
  }
  return { entries, wrapper, otherKeys: otherKeys.sort(), strippedPrefix };
}
