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

/**
 * A training step ran out of the wasm backend's 4 GB WebAssembly heap (tfjs-backend-wasm aborted:
 * `RuntimeError: Aborted()`). The backend cannot be used after such an abort, so the run stops; the
 * message names the sizes that ran and the options (`fixes`) that make a step smaller.
 */
export class OutOfMemoryError extends ConvNeXtError {
  constructor(
    readonly detail: {
      /** Samples computed at once when the heap ran out, and the replica's share they came from. */
      chunk: number;
      share: number;
      imageSize: number;
      /** The names of the options that fix it, in the caller's words (the CLI passes its flags). */
      fixes: { chunkSize: string; batchSize: string; accumSteps?: string; workers: string };
      /** What the backend threw. */
      cause: string;
    },
  ) {
    const { chunk, share, imageSize, fixes: f } = detail;
    const ways = [
      ...(chunk > 2 ? [`compute fewer samples at once with ${f.chunkSize} (an even number below ${chunk}, or 'auto')`] : []),
      ...(f.accumSteps ? [`lower ${f.batchSize} and raise ${f.accumSteps} (the same step in more micro-batches)`] : [`lower ${f.batchSize}`]),
      `raise ${f.workers} (each computes a share)`,
    ];
    super(
      `out of memory: the 4 GB WebAssembly heap of the wasm backend ran out computing ${chunk} sample${chunk === 1 ? '' : 's'} at once` +
        `${share > chunk ? ` (a chunk of a share of ${share})` : ''} at ${imageSize}x${imageSize} px; ${ways.join(', or ')}. ` +
        `The backend is unusable after this abort, so the run stopped [${detail.cause}]`,
    );
  }

  /** The same error with its option names replaced (e.g. by a command's flags). */
  renamed(names: Readonly<Record<string, string>>): OutOfMemoryError {
    const f = this.detail.fixes;
    const r = (k: string | undefined) => (k === undefined ? undefined : (names[k] ?? k));
    return new OutOfMemoryError({
      ...this.detail,
      fixes: { chunkSize: r(f.chunkSize)!, batchSize: r(f.batchSize)!, accumSteps: r(f.accumSteps), workers: r(f.workers)! },
    });
  }
}
