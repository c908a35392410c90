/**
 * What both torch.save formats hand to the rest of the reader: the unpickled root object and a
 * reader of storage bytes by key (torch/serialization.py: the zip format keeps one entry per
 * storage, the legacy format keeps them back to back after the pickles), and the parsing of the
 * persistent id that names a storage inside the pickle.
 */
import { HandlerContext, PyTuple, PyValue, typeName } from '../pickle/values';
import { asText } from '../pickle/torch_rebuild';

/** Storages up to this size are read in one piece (and CRC-checked); larger ones tensor by tensor. */
export const MAX_BLOCK_BYTES = 1 << 30;

/** Reads byte ranges of storages by key. */
export interface StorageSource {
  /**
   * One buffer covering at least [byteStart, byteStart + byteLength) of the storage, with the storage
   * byte offset it starts at (a zip returns the whole entry, so its CRC can be checked), or null
   * when that is too big to hold at once.
   */
  readBlock(key: string, byteStart: number, byteLength: number): { bytes: Uint8Array; start: number } | null;
  /** A byte range of the storage. */
  readRange(key: string, byteStart: number, byteLength: number): Uint8Array;
}

/** A lazily unpickled torch checkpoint: the root object and a way to read its storages. */
export interface TorchContents {
  format: 'torch-zip' | 'torch-legacy';
  root: PyValue;
  source: StorageSource;
  close(): void;
}

/**
 * The fields of a persistent id ('storage', type, key, location, numel[, view]), checked to be a
 * storage of `arity` fields (5 in the zip format, 6 in the legacy one).
 */
export function storagePid(pid: PyValue, ctx: HandlerContext, arity: number): PyValue[] {
  if (!(pid instanceof PyTuple)) return ctx.fail(`persistent id must be a tuple, got ${typeName(pid)}`);
  const typename = asText(pid.items[0] ?? null);
  if (typename === 'module') {
    ctx.fail('the checkpoint pickles a whole nn.Module (persistent id "module"), not a state dict; save model.state_dict() instead');
  }
  if (typename !== 'storage') ctx.fail(`unknown persistent id type ${JSON.stringify(typename ?? typeName(pid.items[0]))}`);
  if (pid.items.length !== arity) ctx.fail(`storage persistent id has ${pid.items.length} fields, expected ${arity}`);
  return pid.items;
}
