/** Shared test helpers: backends to loop over, closeness checks, seeded data, naive references. */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import seedrandom from 'seedrandom';
import { requestedWasmThreads, simdRequested } from '../src/backend';
import { registerSimdKernels } from '../src/backend/wasm_simd';
import { useThreadedWasm, wasmThreadsSupported } from '../src/backend/wasm_threads';
import { encodePng } from '../src/data/png';
import type { PretrainOptions } from '../src/fcmae/pretrain';

tf.env().set('PROD', true);
// Tests run the wasm backend as initBackend() sets it up for users: one thread (CONVNEXT_THREADS=2
// runs the suite on the threaded build) with our SIMD kernels in front (CONVNEXT_SIMD=0: without).
if (wasmThreadsSupported() && requestedWasmThreads() > 1) useThreadedWasm(requestedWasmThreads());
if (simdRequested()) registerSimdKernels();

/** Every test file that computes runs on both backends. */
export const BACKENDS = ['cpu', 'wasm'] as const;

export async function useBackend(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`backend ${name} failed to initialise`);
  await tf.ready();
}

/**
 * Runs the enclosing describe block on backend `name` (after `setup`, e.g. registering kernels) and
 * puts the previous backend back after it.
 */
export function onBackend(name: string, setup: () => void = () => {}): void {
  let previous = '';
  before(async () => {
    previous = tf.getBackend();
    await useBackend(name);
    setup();
  });
  after(async () => {
    if (previous) await useBackend(previous);
  });
}

/** Seeded standard-normal Float32Array (Box-Muller), independent of any TF.js RNG. */
export function randn(n: number, seed: string, scale = 1, shift = 0): Float32Array {
  const rng = seedrandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - rng();
    const v = rng();
    out[i] = shift + scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** Asserts |a - b| <= atol + rtol * |b| elementwise and reports the worst element. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-5, rtol = 1e-5): void {
  expect(actual.length, 'length').to.equal(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(`element ${worst}: got ${actual[worst]}, expected ${expected[worst]} (atol ${atol}, rtol ${rtol})`);
  }
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Index of the largest value in each row of a row-major [rows, cols] array (first one on ties). */
export function argmaxRows(data: ArrayLike<number>, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < data.length / cols; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (data[r * cols + c] > data[r * cols + best]) best = c;
    out.push(best);
  }
  return out;
}

/** Central finite differences (f(x + h e_i) - f(x - h e_i)) / 2h of a scalar function, one per element of x. */
export function finiteDifferences(f: (v: Float32Array) => number, x: Float32Array, h = 1e-2): number[] {
  return Array.from(x, (_, i) => {
    const p = x.slice();
    const m = x.slice();
    p[i] += h;
    m[i] -= h;
    return (f(p) - f(m)) / (2 * h);
  });
}

/** Runs fn and asserts it leaves tf.memory().numTensors unchanged. */
export function expectNoLeak(fn: () => void): void {
  const before = tf.memory().numTensors;
  fn();
  expect(tf.memory().numTensors, 'tensor count after the call').to.equal(before);
}

/** The repository root (tests run from dist/test/...) and the CLI entry point. */
export const ROOT = path.resolve(__dirname, '../..');
export const BIN = path.join(ROOT, 'bin/convnext.js');

/**
 * A temporary directory for the enclosing describe block: made before its tests, removed after
 * them. Returns a path builder: `tmp('a', 'b.npy')` is a path inside it, `tmp()` the directory.
 */
export function useTmpDir(prefix: string): (...parts: string[]) => string {
  let dir = '';
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))));
  after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));
  return (...parts) => {
    if (!dir) throw new Error(`useTmpDir('${prefix}'): the directory exists only while its describe block runs`);
    return path.join(dir, ...parts);
  };
}

/** Result of one CLI run in a child process. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `convnext ...args` in a child process on the wasm backend. */
export function runCli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, CONVNEXT_BACKEND: 'wasm' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user error: exit 1, the message matching `pattern`, and no stack trace. */
export function expectUserError(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.code, r.stderr).to.equal(1);
  expect(r.stderr).to.match(pattern);
  expect(r.stderr, 'no stack trace').to.not.match(/\n\s+at /);
}

/** Reddish, bluish, greenish: the classes of writeColourFolder. */
const FOLDER_COLOURS: readonly (readonly [number, number, number])[] = [
  [200, 60, 60],
  [60, 60, 200],
  [60, 200, 60],
];

/**
 * A small seeded image-folder dataset: `<dir>/<prefix><k>/<i>.png`, one class per colour of
 * FOLDER_COLOURS, every pixel the class colour plus uniform noise of width `noise` (per channel).
 * Returns the class names.
 */
export function writeColourFolder(
  dir: string,
  o: { perClass: number; seed: string; noise: number; size?: (i: number) => [number, number]; prefix?: string },
): string[] {
  const rng = seedrandom(o.seed);
  const size = o.size ?? (() => [40, 36]);
  return FOLDER_COLOURS.map((c, k) => {
    const name = `${o.prefix ?? 'class_'}${k}`;
    fs.mkdirSync(path.join(dir, name), { recursive: true });
    for (let i = 0; i < o.perClass; i++) {
      const [w, h] = size(i);
      const data = new Uint8Array(w * h * 3);
      for (let p = 0; p < w * h; p++) for (let ch = 0; ch < 3; ch++) data[p * 3 + ch] = Math.max(0, Math.min(255, Math.round(c[ch] + o.noise * (rng() - 0.5))));
      fs.writeFileSync(path.join(dir, name, `${i}.png`), encodePng({ width: w, height: h, data }));
    }
    return name;
  });
}

/**
 * A few seconds of FCMAE pretraining on `data`: a 1-1-1-1 ConvNeXt V2 of widths 8-16, 64 px, batch 8,
 * one epoch, no pictures (the data-parallel and chunking equivalence tests' run).
 */
export function tinyPretrainOptions(data: string, out: string, extra: Partial<PretrainOptions> = {}): PretrainOptions {
  return {
    data,
    arch: { version: 2, depths: [1, 1, 1, 1], dims: [8, 8, 16, 16], name: 'convnextv2_test' },
    out,
    epochs: 1,
    batchSize: 8,
    imageSize: 64,
    decoderDim: 8,
    warmupEpochs: 0,
    blr: 1e-2,
    reconstructEvery: 0,
    seed: 2,
    ...extra,
  };
}
