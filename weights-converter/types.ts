/**
 * Types shared by the checkpoint readers (torch zip, torch legacy, safetensors).
 * Shapes are PyTorch's own, C-order (row-major): a conv weight is [O, I, kh, kw].
 */

/** Element type as stored in the file. */
export type SourceDType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** One decoded tensor, contiguous in C order (strides and storage offset already applied). */
export interface RawTensor {
  /** C-order shape, PyTorch's own (e.g. conv weight [O, I, kh, kw]); [] for a scalar. */
  shape: number[];
  /** Element type as stored in the file. */
  dtype: SourceDType;
  /**
   * Float dtypes decoded to Float32Array; integer dtypes to Int32Array (an int64 value outside the
   * int32 range is an error); bool to Uint8Array of 0/1.
   */
  data: Float32Array | Int32Array | Uint8Array;
}

/** Which container the tensors came from. */
export type CheckpointFormat = 'torch-zip' | 'torch-legacy' | 'safetensors';

/** A state dict read from a file, after unwrapping. */
export interface Checkpoint {
  format: CheckpointFormat;
  /** The state dict, in file order, after unwrapping and 'module.' stripping. */
  tensors: Map<string, RawTensor>;
  /** The wrapper key that was unwrapped ('model', 'state_dict', 'model_ema', ...) or null. */
  wrapper: string | null;
  /** Top-level keys that were not loaded (e.g. 'optimizer', 'epoch', 'args'), sorted. */
  otherKeys: string[];
  /** safetensors `__metadata__`, else {}. */
  metadata: Record<string, string>;
  /** 'module.' when every key had that prefix (DataParallel) and it was removed, else null. */
  strippedPrefix?: string | null;
}

/** Options of readCheckpoint. */
export interface ReadCheckpointOptions {
  /**
   * Top-level key holding the state dict (e.g. 'model_ema'). Default: the first of 'model',
   * 'state_dict', 'model_ema', 'module', 'state_dict_ema' holding a dict of tensors.
   */
  wrapperKey?: string;
  /** Verify the CRC-32 of every zip entry read (default true). */
  verifyCrc?: boolean;
}

/** Bytes per element. */
export const ITEM_SIZE: Readonly<Record<SourceDType, number>> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};
