/**
 * Entry point of the checkpoint readers: detect the container from its first bytes (never from the
 * file extension), read it, unwrap the state dict. Pure TypeScript; no Python at run time.
 *
 *   const ckpt = await readCheckpoint('convnext_tiny_1k_224_ema.pth');
 *   ckpt.tensors.get('stem.0.weight');   // { shape: [96, 3, 4, 4], dtype: 'float32', data }
 */
import { CheckpointError } from './errors';
import { readSafetensors } from './safetensors';
import { openRegularFile, readExactly } from './source';
import { TorchContents, materializeTensors, openTorchLegacy, openTorchZip, selectStateDict } from './torch';
import { Checkpoint, CheckpointFormat, ReadCheckpointOptions } from './types';
import { isZip } from './zip';

export type { Checkpoint, CheckpointFormat, RawTensor, ReadCheckpointOptions, SourceDType } from './types';
export { CheckpointError, UnsafePickleError } from './errors';

/**
 * The container format of a file from its first bytes (9 are enough), or null: zip magic `PK\x03\x04` → torch-zip; pickle PROTO 2-5 → torch-legacy (its magic number
 * is checked when read); u64 header length then '{' → safetensors.
 */
export function detectFormat(head: Uint8Array): CheckpointFormat | null {
  if (isZip(head)) return 'torch-zip';
  if (head.length >= 2 && head[0] === 0x80 && head[1] >= 2 && head[1] <= 5) return 'torch-legacy';
  if (head.length >= 9 && head[8] === 0x7b) return 'safetensors';
  return null;
}

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** Why a file is not one of ours, for the common look-alikes. */
function unknownFormatReason(fd: number, size: number, head: Uint8Array, file: string): string {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip-compressed file: decompress it first';
  if (head[0] === 0x89 && head[1] === 0x48 && head[2] === 0x44 && head[3] === 0x46) return 'HDF5 (Keras .h5) files are not supported';
  if (head[0] === 0x93 && String.fromCharCode(...head.subarray(1, 6)) === 'NUMPY') return 'a .npy array, not a checkpoint';
  if (size >= 262) {
    const ustar = readExactly(fd, 257, 5, file, 'tar header').toString('latin1');
    if (ustar === 'ustar') return 'tar-format torch checkpoint (torch < 0.4) is not supported';
  }
  if (head[0] === 0x80) return `pickle protocol ${head[1]} is not supported (expected 2 to 5)`;
  return `unrecognized format: not a torch zip, torch legacy or safetensors file (first bytes: ${hex(head.subarray(0, 8))})`;
}

/** Read a checkpoint synchronously; see readCheckpoint. */
export function readCheckpointSync(file: string, opts: ReadCheckpointOptions = {}): Checkpoint {
  try {
    return readUnguarded(file, opts);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    // Safety net: a reader bug must still surface as a CheckpointError naming the file.
    const err = new CheckpointError(file, `unreadable checkpoint (${(e as Error)?.name ?? 'error'}: ${(e as Error)?.message ?? String(e)})`);
    (err as Error & { cause?: unknown }).cause = e;
    throw err;
  }
}

function readUnguarded(file: string, opts: ReadCheckpointOptions): Checkpoint {
  const opened = openRegularFile(file, 'a checkpoint');
  let format: CheckpointFormat | null;
  try {
    const { fd, size } = opened;
    if (size === 0) throw new CheckpointError(file, 'empty file (0 bytes)');
    const head = readExactly(fd, 0, Math.min(size, 16), file, 'file header');
    format = detectFormat(head);
    if (format === null) throw new CheckpointError(file, unknownFormatReason(fd, size, head, file));
  } finally {
    opened.close();
  }

  if (format === 'safetensors') {
    if (opts.wrapperKey !== undefined) {
      throw new CheckpointError(file, `wrapper key '${opts.wrapperKey}' requested, but safetensors files have no wrapper`);
    }
    const { tensors, metadata } = readSafetensors(file);
    return { format, tensors, wrapper: null, otherKeys: [], metadata, strippedPrefix: null };
  }

  const contents: TorchContents = format === 'torch-zip' ? openTorchZip(file, opts) : openTorchLegacy(file);
  try {
    const sel = selectStateDict(contents.root, file, opts.wrapperKey);
    const tensors = materializeTensors(sel.entries, contents.source, file);
    return {
      format: contents.format,
      tensors,
      wrapper: sel.wrapper,
      otherKeys: sel.otherKeys,
      metadata: {},
      strippedPrefix: sel.strippedPrefix,
    };
  } finally {
    contents.close();
  }
}

/**
 * Read a PyTorch (.pth/.pt/.bin, zip or legacy) or safetensors checkpoint and return its state
 * dict as C-order tensors in PyTorch's own shapes. The format is detected from the bytes. Wrapped
 * training checkpoints ({'model': ..., 'optimizer': ...}) are unwrapped (see ReadCheckpointOptions),
 * and a DataParallel 'module.' prefix is removed. Pickles are run by a restricted unpickler that
 * only knows tensor state-dict types: nothing in the file is ever executed.
 * Throws CheckpointError (UnsafePickleError for a refused global) for any bad input.
 */
export async function readCheckpoint(file: string, opts: ReadCheckpointOptions = {}): Promise<Checkpoint> {
  return readCheckpointSync(file, opts);
}
