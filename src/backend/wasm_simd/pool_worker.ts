/**
 * One kernel thread of pool.ts (a worker_threads entry file): instantiates the pooled SIMD kernel
 * modules (split.ts's POOLED_MODULES, their .shared[.fma].wasm binaries, as the caller's) against the backend's shared heap,
 * says 'ready', then loops: wait for the next call (pool_protocol.ts), claim and run its chunks until
 * none is left, wait again. CTRL.stop ends the loop and the thread.
 */
import { parentPort, workerData } from 'worker_threads';
import { webAssembly } from '../webassembly';
import { simdBinary } from './binaries';
import { ARGS_PER_CHUNK, CTRL, PoolWorkerData, decodeNext } from './pool_protocol';
import { GEMM_SCRATCH_ARGS, POOLED_EXPORTS, POOLED_MODULES } from './split';

type Fn = (...args: number[]) => void;

function main(): void {
  const { memory, ctrl: ctrlBuffer, args: argsBuffer, scratch, fma } = workerData as PoolWorkerData;
  if (!webAssembly) throw new Error('no WebAssembly');
  const exports: Record<string, unknown> = {};
  for (const name of POOLED_MODULES) {
    const module = new webAssembly.Module(simdBinary(name, true, fma));
    Object.assign(exports, new webAssembly.Instance(module, { env: { memory } }).exports);
  }
  const fns = POOLED_EXPORTS.map((name) => {
    if (typeof exports[name] !== 'function') throw new Error(`kernel module has no export ${name}`);
    return exports[name] as Fn;
  });
  const gemm = POOLED_EXPORTS.indexOf('gemm_part_f32');
  const ctrl = new Int32Array(ctrlBuffer);
  const args = new Float64Array(argsBuffer);
  const a = new Float64Array(ARGS_PER_CHUNK);
  // From 0, not from the word's value now: the caller may bump it as soon as 'ready' is out.
  let seen = 0;
  parentPort!.postMessage('ready');
  for (;;) {
    Atomics.wait(ctrl, CTRL.seq, seen);
    seen = Atomics.load(ctrl, CTRL.seq);
    if (Atomics.load(ctrl, CTRL.stop)) return;
    for (;;) {
      const [, chunks, i] = decodeNext(Atomics.add(ctrl, CTRL.next, 1));
      if (i >= chunks) break;
      // A valid claim: this call's op and arguments stay put until its chunks are all done.
      const op = Atomics.load(ctrl, CTRL.op);
      a.set(args.subarray(i * ARGS_PER_CHUNK, (i + 1) * ARGS_PER_CHUNK));
      if (op === gemm) [a[GEMM_SCRATCH_ARGS[0]], a[GEMM_SCRATCH_ARGS[1]]] = [scratch.panel, scratch.packedA];
      try {
        fns[op](a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]);
      } catch {
        Atomics.store(ctrl, CTRL.failed, 1);
      }
      if (Atomics.add(ctrl, CTRL.done, 1) + 1 === chunks) Atomics.notify(ctrl, CTRL.done);
    }
  }
}

try {
  main();
} catch (e) {
  parentPort?.postMessage(e instanceof Error ? e.message : String(e));
}
