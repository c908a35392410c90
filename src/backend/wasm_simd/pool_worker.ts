/**
 * One kernel thread of pool.ts (a worker_threads entry file): instantiates the pooled SIMD kernel
 * modules (split.ts's POOLED_MODULES, their .shared.wasm binaries) against the backend's shared heap,
 * says 'ready', then loops: wait on its sequence word, run the op with the arguments in its slot,
 * count the part done (notifying the caller after the last). Op -1 ends the loop and the thread.
 */
import { parentPort, workerData } from 'worker_threads';
import { webAssembly } from '../webassembly';
import { simdBinary } from './binaries';
import { ARGS_PER_PART, CTRL, PoolWorkerData } from './pool_protocol';
import { POOLED_EXPORTS, POOLED_MODULES } from './split';

type Fn = (...args: number[]) => void;

function main(): void {
  const { memory, ctrl: ctrlBuffer, args: argsBuffer, index } = workerData as PoolWorkerData;
  if (!webAssembly) throw new Error('no WebAssembly');
  const exports: Record<string, unknown> = {};
  for (const name of POOLED_MODULES) {
    const module = new webAssembly.Module(simdBinary(name, true));
    Object.assign(exports, new webAssembly.Instance(module, { env: { memory } }).exports);
  }
  const fns = POOLED_EXPORTS.map((name) => {
    if (typeof exports[name] !== 'function') throw new Error(`kernel module has no export ${name}`);
    return exports[name] as Fn;
  });
  const ctrl = new Int32Array(ctrlBuffer);
  const a = new Float64Array(argsBuffer, 8 * ARGS_PER_PART * index, ARGS_PER_PART);
  const seqAt = CTRL.seq(index);
  // From 0, not from the word's value now: the caller may bump it as soon as 'ready' is out.
  let seq = 0;
  parentPort!.postMessage('ready');
  for (;;) {
    Atomics.wait(ctrl, seqAt, seq);
    const now = Atomics.load(ctrl, seqAt);
    if (now === seq) continue; // spurious wake-up
    seq = now;
    const op = ctrl[seqAt + 1];
    if (op < 0) return;
    try {
      fns[op](a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]);
    } catch {
      Atomics.store(ctrl, CTRL.failed, 1);
    }
    if (Atomics.sub(ctrl, CTRL.pending, 1) === 1) Atomics.notify(ctrl, CTRL.pending);
  }
}

try {
  main();
} catch (e) {
  parentPort?.postMessage(e instanceof Error ? e.message : String(e));
}
