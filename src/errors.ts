/**
 * Typed errors of convnext-tfjs. Every error a user can cause (a wrong shape, an unknown model name,
 * a bad weights file) is one of these, with a message naming the thing and the problem; the CLI
 * prints `error: <message>` for them and exits non-zero, without a stack trace.
 */

/** Base class: anything thrown on purpose by this library. */
export class ConvNeXtError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A tensor had the wrong rank, shape or dtype. */
export class ShapeError extends ConvNeXtError {}

/** A config or model name is unknown or invalid. */
export class ConfigError extends ConvNeXtError {}

/** Weights do not fit the model: missing, unexpected or mis-shaped names. */
export class WeightsError extends ConvNeXtError {
  constructor(
    message: string,
    readonly missing: string[] = [],
    readonly unexpected: string[] = [],
    readonly mismatched: string[] = [],
  ) {
    super(message);
  }
}

/** A requested TF.js backend could not be loaded or initialised. */
export class BackendError extends ConvNeXtError {}

// Errors of the model directory, .npy files, images, checkpoints, the zoo and worker pools.

/**
 * An image file could not be read, is in a format we do not read, or could not be decoded. The
 * message is plain ("truncated PNG", "not a regular file"); `detail` keeps what the decoder itself
 * said, when a decoder failed, for bug reports.
 */
export class ImageError extends ConvNeXtError {
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** A .npy file is malformed, truncated or uses an unsupported dtype. */
export class NpyError extends ConvNeXtError {}

/** A converted model directory or URL could not be read. */
export class ModelFormatError extends ConvNeXtError {}

/** A zoo name is unknown, a custom entry is invalid, or a cached model is missing offline. */
export class ZooError extends ConvNeXtError {}

/** A download failed: HTTP error, dropped connection, timeout, size or hash mismatch. */
export class DownloadError extends ConvNeXtError {
  constructor(
    message: string,
    /** The URL requested. */
    readonly url: string,
    /** HTTP status, when the server answered with an error. */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** A job failed in a worker, a worker died, or the pool was disposed. */
export class PoolError extends ConvNeXtError {
  constructor(
    message: string,
    /** The worker it happened in, when one did. */
    readonly workerIndex?: number,
    /** The error class name inside the worker (e.g. 'ShapeError'), when it threw. */
    readonly workerErrorName?: string,
  ) {
    super(message);
  }
}

/**
 * A data-parallel training worker failed: it threw during a step, could not start, or died. The run
 * stops; the last checkpoint written stays valid (checkpoints are atomic).
 */
export class TrainWorkerError extends PoolError {}

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
    super(file, `refusing to load global '${globalName}' (not in the allowlist of tensor state-dict types) ` + `at pickle offset ${offset}`);
    this.globalName = globalName;
  }
}

/** A training option is missing or out of range; `option` is its name in TrainOptions. */
export class TrainOptionError extends ConfigError {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(message);
  }
}

/** An FCMAE input, mask or option is invalid; the message names the thing and the problem. */
export class FcmaeError extends ConvNeXtError {}
