/**
 * Typed errors of the checkpoint readers. Every malformed or hostile input ends in a CheckpointError
 * naming the file and the reason; nothing deeper (RangeError, TypeError) escapes the readers.
 */
import { ConvNeXtError } from '../src/errors';

/** A checkpoint file could not be read: truncated, corrupt, unsupported or unsafe. */
export class CheckpointError extends ConvNeXtError {
  /** The file being read (or a label such as '<buffer>'). */
  readonly file: string;
  /** What is wrong, without the file name. */
  readonly reason: string;

  constructor(file: string, reason: string) {
    super(`checkpoint ${file}: ${reason}`);
    this.file = file;
    this.reason = reason;
  }
}

/**
 * A pickle named a global outside the allowlist of tensor state-dict types. Nothing is ever called
 * or imported: the name alone is refused, so the error is raised before any object is built.
 */
export class UnsafePickleError extends CheckpointError {
  /** The refused global as "module.name", e.g. "posix.system". */
  readonly globalName: string;

  constructor(file: string, globalName: string, offset: number) {
    super(
      file,
      `refusing to load global '${globalName}' (not in the allowlist of tensor state-dict types) ` +
        `at pickle offset ${offset}`,
    );
    this.globalName = globalName;
  }
}
