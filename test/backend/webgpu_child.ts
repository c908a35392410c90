/**
 * The real-WebGPU half of test/backend/webgpu.test.ts, run as child processes, each holding one
 * backend as a user's process does (a webgpu tensor cannot move to another backend, and Dawn is best
 * kept out of the mocha process and away from the wasm kernels):
 *   probe        initialises webgpu by name and releases it: {"ok": true}, or {"skip": reason}
 *   wasm FILE    computes the reference on wasm and writes it to FILE
 *   webgpu FILE  computes the same on webgpu, on models built after the backend is set, and
 *                prints the report comparing it with FILE and the fixtures:
 *   - the committed PyTorch parity fixtures (test/fixtures/parity): logits, argmax, pre-logits
 *   - random non-trivial weights (test/random_weights.ts), V1 and V2: logits, embedding, stages
 *   - the training fixtures (test/fixtures/train v1, v2): loss and every gradient, vs wasm and torch
 *   - tensor counts around forward and gradient passes; which fused kernels webgpu has
 * Each prints one JSON line; the parent asserts the bounds. Each phase is announced on stderr
 * first (`phase: ...`), so a native crash (Dawn, the Vulkan driver) names where it happened.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend';
import { releaseWebGpu } from '../../src/backend/webgpu';
import { readNpy, readNpyFloat32 } from '../../src/io/npy';
import { loadModel } from '../../src/factory';
import { GELU_KERNEL } from '../../src/kernel_names';
import { LAYER_NORM_KERNEL } from '../../src/kernel_names';
import { ConvNeXt, ConvNeXtConfig } from '../../src/model';
import { createModel } from '../../src/factory';
import { smoothOneHot, softCrossEntropy } from '../../src/train/loss';
import { remapStateDict } from '../../weights-converter/layouts';
import { RawTensor } from '../../weights-converter/types';
import { argmaxRows, maxAbs, maxAbsDiff, randn } from '../helpers';
import { assignWeights, randomWeights } from '../random_weights';

const ROOT = path.resolve(__dirname, '../../..');
const PARITY = path.join(ROOT, 'test/fixtures/parity');
const TRAIN = path.join(ROOT, 'test/fixtures/train');

type Arrays = Map<string, Float32Array>;

/** What one backend computed, as plain arrays. */
interface Run {
  fixtures: Map<string, { logits: Float32Array; prelogits: Float32Array; classes: number }>;
  random: Map<string, Arrays>;
  grads: Map<string, { loss: number; grads: Arrays }>;
  leaks: { forward: number; grads: number };
}

const RANDOM: Record<string, Partial<ConvNeXtConfig>> = {
  v1: { version: 1, depths: [1, 1, 2, 1], dims: [16, 24, 32, 48], numClasses: 11 },
  v2: { version: 2, depths: [1, 1, 2, 1], dims: [16, 24, 32, 48], numClasses: 11 },
};

async function read(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

function nchwToNhwc(file: string): tf.Tensor4D {
  const a = readNpyFloat32(file);
  return tf.tidy(() => tf.transpose(tf.tensor4d(a.data, a.shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D);
}

async function fixtureOutputs(run: Run): Promise<void> {
  for (const name of fs.readdirSync(PARITY).sort()) {
    const dir = path.join(PARITY, name);
    if (!fs.existsSync(path.join(dir, 'meta.json'))) continue;
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as { checkpoint: string; num_classes: number };
    const { model } = await loadModel(path.join(dir, meta.checkpoint));
    const x = nchwToNhwc(path.join(dir, 'input.npy'));
    const logits = model.forward(x);
    const emb = model.embed(x);
    run.fixtures.set(name, { logits: await read(logits), prelogits: await read(emb), classes: meta.num_classes });
    tf.dispose([x, logits, emb]);
    model.dispose();
  }
}

async function randomOutputs(run: Run): Promise<void> {
  for (const [name, cfg] of Object.entries(RANDOM)) {
    const model = createModel(cfg as ConvNeXtConfig, { init: 'zeros' });
    assignWeights(model, randomWeights(model, `webgpu-${name}`));
    const x = tf.tensor4d(randn(2 * 64 * 64 * 3, `x-${name}`), [2, 64, 64, 3]);
    const out: Arrays = new Map();
    const logits = model.forward(x);
    out.set('logits', await read(logits));
    const emb = model.embed(x);
    out.set('embed', await read(emb));
    const stages = model.forwardStages(x);
    for (let i = 0; i < stages.length; i++) out.set(`stage${i}`, await read(stages[i]));
    tf.dispose([x, logits, emb, ...stages]);
    if (name === 'v2') {
      // Leak check on this backend: a forward and a gradient pass leave the tensor count as it was.
      const x2 = tf.tensor4d(randn(2 * 64 * 64 * 3, 'leak'), [2, 64, 64, 3]);
      const n0 = tf.memory().numTensors;
      const y = model.forward(x2);
      await read(y);
      y.dispose();
      run.leaks.forward = tf.memory().numTensors - n0;
      const targets = smoothOneHot([1, 3], model.numClasses, 0.1);
      const n1 = tf.memory().numTensors;
      const { value, grads } = tf.variableGrads(
        () => softCrossEntropy(model.forward(x2, { training: true, seed: 1 }), targets),
        [...model.getWeights().values()],
      );
      await read(value);
      tf.dispose([value, ...Object.values(grads)]);
      run.leaks.grads = tf.memory().numTensors - n1;
      tf.dispose([x2, targets]);
    }
    run.random.set(name, out);
    model.dispose();
  }
}

/** Torch's gradient tree of a training fixture, under our names and layouts. */
export function torchTree(dir: string, names: string[]): Arrays {
  const raw = new Map<string, RawTensor>();
  for (const n of names) {
    const a = readNpyFloat32(path.join(dir, `${n}.npy`));
    raw.set(n, { shape: a.shape, dtype: 'float32', data: a.data });
  }
  return new Map([...remapStateDict(raw, { layout: 'official' }).weights].map(([k, v]) => [k, v.data as Float32Array]));
}

async function gradOutputs(run: Run): Promise<void> {
  for (const c of ['v1', 'v2']) {
    const dir = path.join(TRAIN, c);
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as { config: { num_classes: number } };
    const { model: loaded } = await loadModel(path.join(dir, 'model.pth'));
    const model = new ConvNeXt({ ...loaded.config, dropPathRate: 0 }, 0, 'zeros');
    model.loadWeights(loaded.getWeights());
    loaded.dispose();
    const x = nchwToNhwc(path.join(dir, 'input.npy'));
    const labels = Int32Array.from(readNpy(path.join(dir, 'labels.npy')).data as ArrayLike<number>);
    const vars = model.getWeights();
    const byTf = new Map([...vars].map(([n, v]) => [v.name, n]));
    const targets = smoothOneHot(labels, meta.config.num_classes, 0.1);
    const { value, grads } = tf.variableGrads(() => softCrossEntropy(model.forward(x), targets), [...vars.values()]);
    const out: Arrays = new Map();
    for (const [n, g] of Object.entries(grads)) out.set(byTf.get(n)!, await read(g));
    run.grads.set(c, { loss: (await read(value))[0], grads: out });
    tf.dispose([value, targets, x, ...Object.values(grads)]);
    model.dispose();
  }
}

/** Announces a phase on stderr before it starts (see the header). */
function phase(name: string): void {
  process.stderr.write(`phase: ${name}\n`);
}

async function compute(backend: string): Promise<Run> {
  const run: Run = { fixtures: new Map(), random: new Map(), grads: new Map(), leaks: { forward: NaN, grads: NaN } };
  phase(`${backend} parity fixtures`);
  await fixtureOutputs(run);
  phase(`${backend} random weights`);
  await randomOutputs(run);
  phase(`${backend} training gradients`);
  await gradOutputs(run);
  return run;
}

/** max |a - b| / max(1, max |b|): the parity standard's relative error. */
function rel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return a.length !== b.length ? Infinity : maxAbsDiff(a, b) / Math.max(1, maxAbs(b));
}

/** Worst over tensors of max |a - b| - 1e-4 * max |b| (<= 1e-7 passes the gradient bound), and the tensor. */
function gradExcess(ours: Arrays, ref: Arrays): { worstRel: number; worstName: string; within: boolean } {
  let worstRel = 0;
  let worstName = '';
  let within = ours.size === ref.size;
  for (const [name, r] of ref) {
    const o = ours.get(name);
    if (!o || o.length !== r.length) return { worstRel: Infinity, worstName: name, within: false };
    const d = maxAbsDiff(o, r);
    const scale = maxAbs(r);
    if (d > 1e-4 * scale + 1e-7) within = false;
    const relErr = d / Math.max(scale, 1e-12);
    if (relErr > worstRel) {
      worstRel = relErr;
      worstName = name;
    }
  }
  return { worstRel, worstName, within };
}

/** A Run as JSON, for the wasm half's file (float32 values survive a trip through doubles exactly). */
function runToJson(run: Run, ms: number): string {
  const arrays = (m: Arrays) => Object.fromEntries([...m].map(([k, v]) => [k, Array.from(v)]));
  return JSON.stringify({
    ms,
    leaks: run.leaks,
    fixtures: Object.fromEntries(
      [...run.fixtures].map(([k, f]) => [k, { logits: Array.from(f.logits), prelogits: Array.from(f.prelogits), classes: f.classes }]),
    ),
    random: Object.fromEntries([...run.random].map(([k, m]) => [k, arrays(m)])),
    grads: Object.fromEntries([...run.grads].map(([k, g]) => [k, { loss: g.loss, grads: arrays(g.grads) }])),
  });
}

function runFromJson(text: string): { run: Run; ms: number } {
  type Json = Record<string, number[]>;
  const j = JSON.parse(text) as {
    ms: number;
    leaks: Run['leaks'];
    fixtures: Record<string, { logits: number[]; prelogits: number[]; classes: number }>;
    random: Record<string, Json>;
    grads: Record<string, { loss: number; grads: Json }>;
  };
  const arrays = (o: Json): Arrays => new Map(Object.entries(o).map(([k, v]) => [k, Float32Array.from(v)]));
  const run: Run = {
    leaks: j.leaks,
    fixtures: new Map(
      Object.entries(j.fixtures).map(([k, f]) => [k, { logits: Float32Array.from(f.logits), prelogits: Float32Array.from(f.prelogits), classes: f.classes }]),
    ),
    random: new Map(Object.entries(j.random).map(([k, o]) => [k, arrays(o)])),
    grads: new Map(Object.entries(j.grads).map(([k, g]) => [k, { loss: g.loss, grads: arrays(g.grads) }])),
  };
  return { run, ms: j.ms };
}

/** `probe`: whether webgpu initialises here ({"skip": reason} when not), Dawn released again. */
async function probe(): Promise<object> {
  try {
    phase('webgpu probe');
    await initBackend({ backend: 'webgpu' });
    phase('webgpu release after the probe');
    releaseWebGpu();
    return { ok: true };
  } catch (e) {
    return { skip: (e as Error).message };
  }
}

/** `wasm FILE`: the reference half, on wasm, written to FILE. */
async function wasmHalf(file: string): Promise<object> {
  phase('wasm init');
  await initBackend({ backend: 'wasm' });
  const t0 = performance.now();
  const run = await compute('wasm');
  fs.writeFileSync(file, runToJson(run, performance.now() - t0));
  return { ok: true };
}

/** `webgpu FILE`: the same on webgpu, compared with the wasm half's FILE and the fixtures: the report. */
async function webgpuHalf(file: string): Promise<object> {
  phase('webgpu init');
  const info = await initBackend({ backend: 'webgpu' });
  const t1 = performance.now();
  const gpu = await compute('webgpu');
  const gpuMs = performance.now() - t1;
  const { run: wasm, ms: wasmMs } = runFromJson(fs.readFileSync(file, 'utf8'));

  const fixtures = [...gpu.fixtures].map(([name, g]) => {
    const ref = readNpyFloat32(path.join(PARITY, name, 'logits.npy')).data;
    const refPre = readNpyFloat32(path.join(PARITY, name, 'prelogits.npy')).data;
    return {
      case: name,
      logitsRel: rel(g.logits, ref),
      prelogitsRel: rel(g.prelogits, refPre),
      argmaxEqual: JSON.stringify(argmaxRows(g.logits, g.classes)) === JSON.stringify(argmaxRows(ref, g.classes)),
      logitsRelVsWasm: rel(g.logits, wasm.fixtures.get(name)!.logits),
    };
  });
  const random = [...gpu.random].map(([name, g]) => ({
    model: name,
    ...Object.fromEntries([...g].map(([k, v]) => [`${k}Rel`, rel(v, wasm.random.get(name)!.get(k)!)])),
    argmaxEqual: JSON.stringify(argmaxRows(g.get('logits')!, 11)) === JSON.stringify(argmaxRows(wasm.random.get(name)!.get('logits')!, 11)),
  }));
  const grads = [...gpu.grads].map(([c, g]) => {
    const torch = torchTree(path.join(TRAIN, c, 'grads'), JSON.parse(fs.readFileSync(path.join(TRAIN, c, 'grad_names.json'), 'utf8')) as string[]);
    const torchLoss = (JSON.parse(fs.readFileSync(path.join(TRAIN, c, 'loss.json'), 'utf8')) as { loss: number }).loss;
    return {
      case: c,
      loss: g.loss,
      lossWasm: wasm.grads.get(c)!.loss,
      lossTorch: torchLoss,
      params: g.grads.size,
      vsWasm: gradExcess(g.grads, wasm.grads.get(c)!.grads),
      vsTorch: gradExcess(g.grads, torch),
    };
  });
  const fused = { [GELU_KERNEL]: tf.getKernel(GELU_KERNEL, 'webgpu') != null, [LAYER_NORM_KERNEL]: tf.getKernel(LAYER_NORM_KERNEL, 'webgpu') != null };
  const result = { adapter: info.adapter, fixtures, random, grads, leaks: gpu.leaks, wasmLeaks: wasm.leaks, fused, wasmMs, gpuMs };
  phase('webgpu release');
  releaseWebGpu();
  return result;
}

async function main(): Promise<void> {
  const [mode, file] = process.argv.slice(2);
  const out = mode === 'probe' ? await probe() : mode === 'wasm' ? await wasmHalf(file) : mode === 'webgpu' ? await webgpuHalf(file) : null;
  if (!out) throw new Error(`usage: webgpu_child.js probe | wasm FILE | webgpu FILE (got ${process.argv.slice(2).join(' ')})`);
  phase('report');
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: (e as Error).stack ?? String(e) }) + '\n');
  process.exitCode = 1;
});
