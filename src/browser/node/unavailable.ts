/**
 * The browser build's stand-in for Node modules only Node code paths use (crypto, worker_threads,
 * child_process, ...): importing is harmless, calling anything throws a clear error.
 */
function unavailable(name: string): never {
  throw new Error(`${name} is not available in the browser build of convnext-tfjs`);
}

export const createHash = (): never => unavailable('crypto.createHash');
export const randomBytes = (): never => unavailable('crypto.randomBytes');
export class Worker {
  constructor() {
    unavailable('worker_threads.Worker');
  }
}
export const parentPort = null;
export const workerData = null;
export const isMainThread = true;
