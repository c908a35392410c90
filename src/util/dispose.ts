/**
 * Building a resource in steps without leaking it: when a step after its creation fails, the
 * resource is disposed before the error goes on, so a half-built model, pool or engine never
 * keeps tensors or threads alive.
 */

/** Anything with a dispose(), synchronous (a model) or not (a worker pool). */
export interface Disposable {
  dispose(): unknown;
}

/** Runs `fill(made)` and returns `made`; if `fill` throws, disposes `made` and rethrows. */
export function builtOrDisposed<T extends Disposable>(made: T, fill: (made: T) => void): T {
  try {
    fill(made);
    return made;
  } catch (e) {
    made.dispose();
    throw e;
  }
}

/** builtOrDisposed for an asynchronous `fill`; an asynchronous dispose is awaited before the error goes on. */
export async function builtOrDisposedAsync<T extends Disposable>(made: T, fill: (made: T) => Promise<unknown>): Promise<T> {
  try {
    await fill(made);
    return made;
  } catch (e) {
    await made.dispose();
    throw e;
  }
}
