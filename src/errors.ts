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
