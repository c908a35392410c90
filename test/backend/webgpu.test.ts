/**
 * The real WebGPU backend (Dawn) on whatever adapter the machine has; in CI that is software
 * Vulkan: SwiftShader from Debian's chromium package. VK_ICD_FILENAMES is set to its ICD for the
 * child processes when unset and the file exists. Without any adapter (or where the driver itself
 * crashes: childLine) the suite is skipped and says why. Everything runs in child processes (webgpu
 * tensors cannot move between backends, and Dawn stays out of the mocha process):
 *   - webgpu_child.js (a probe, a wasm half and a webgpu half, one backend a process): PyTorch
 *     parity fixtures, random-weight forward vs wasm, training gradients vs wasm and torch, tensor
 *     leaks, fused kernel names running their composites
 *   - the CLI: `--backend webgpu forward / train / predict / embed`, compared with wasm
 */
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { readNpyFloat32 } from '../../src/io/npy';
import { maxAbs, maxAbsDiff, useTmpDir } from '../helpers';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin/convnext.js');
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const IMAGES = path.join(ROOT, 'test/fixtures/images');

/**
 * Variables every child gets on top of the parent's: set when the WebGPU child crashed twice in
 * native code and reported with our fused multiply-add kernels off (see childLine).
 */
const fallbackEnv: NodeJS.ProcessEnv = {};

function childEnv(backend?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...fallbackEnv };
  delete env.CONVNEXT_BACKEND;
  if (backend) env.CONVNEXT_BACKEND = backend;
  if (!env.VK_ICD_FILENAMES && fs.existsSync(SWIFTSHADER_ICD)) env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  return env;
}

/** Signals of a crash in native code (not the timeout's SIGTERM). */
const NATIVE_CRASH = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGABRT', 'SIGFPE']);

function spawnNode(args: string[], backend?: string): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, args, { encoding: 'utf8', env: childEnv(backend), timeout: 540_000, maxBuffer: 64 << 20 });
}

/**
 * One CLI run; a run that crashed in native code (Dawn or the software Vulkan driver) is run once
 * more and the crash is printed, so a driver's rare crash is seen without failing the suite, and a
 * repeated one still fails.
 */
function node(args: string[], backend?: string): SpawnSyncReturns<string> {
  const r = spawnNode(args, backend);
  if (!r.signal || !NATIVE_CRASH.has(r.signal)) return r;
  console.log(`      note: convnext ${args.slice(1, 4).join(' ')} crashed (${r.signal}); running it once more`);
  return spawnNode(args, backend);
}

/** The parity standard's relative error: max |a - b| / max(1, max |b|). */
function rel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  return maxAbsDiff(a, b) / Math.max(1, maxAbs(b));
}

interface GradReport {
  worstRel: number;
  worstName: string;
  within: boolean;
}

interface ChildReport {
  skip?: string;
  error?: string;
  adapter: { description: string; software: boolean };
  fixtures: { case: string; logitsRel: number; prelogitsRel: number; argmaxEqual: boolean; logitsRelVsWasm: number }[];
  random: ({ model: string; argmaxEqual: boolean } & Record<string, number | string | boolean>)[];
  grads: { case: string; loss: number; lossWasm: number; lossTorch: number; params: number; vsWasm: GradReport; vsTorch: GradReport }[];
  leaks: { forward: number; grads: number };
  fused: Record<string, boolean>;
  wasmMs: number;
  gpuMs: number;
}

let report: ChildReport | undefined;
/** Why the child gave no report (thrown again by the second describe block, not run again). */
let failure: Error | undefined;

/** The child's last JSON line (gdb may print after it), or undefined. */
function lastJsonLine(stdout: string): string | undefined {
  return stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
}

/** Where a crashed child got to: its last `phase:` line on stderr. */
function lastPhase(stderr: string): string {
  const phases = stderr.split('\n').filter((l) => l.startsWith('phase: '));
  return phases.length ? phases[phases.length - 1].slice('phase: '.length) : 'before its first phase';
}

/** The gdb commands for a child: run it (ASLR as outside gdb), then on a crash every thread's stack and the crashing one's. */
const GDB_SCRIPT = [
  'set print thread-events off',
  'set pagination off',
  'set disable-randomization off',
  'handle SIGPIPE nostop noprint',
  'run',
  'thread apply all bt 8',
  'echo crashing thread:\n',
  'bt 40',
];

let gdbUsable: boolean | undefined;

/** Whether gdb is installed and may run a program here (a container can forbid ptrace); asked once. */
function gdbRuns(): boolean {
  if (gdbUsable === undefined) {
    const args = ['-q', '-batch', ...GDB_SCRIPT.slice(0, 4).flatMap((c) => ['-ex', c]), '-ex', 'run', '--args', process.execPath, '-e', '0'];
    const r = spawnSync('gdb', args, { encoding: 'utf8', timeout: 60_000 });
    gdbUsable = r.status === 0 && /exited normally/.test(r.stdout);
  }
  return gdbUsable;
}

/** A child under gdb, so that a native crash comes with a backtrace; plain node where gdb cannot run it. */
function childUnderGdb(args: string[]): SpawnSyncReturns<string> {
  if (!gdbRuns()) return spawnNode(args);
  const gdbArgs = ['-q', '-batch', ...GDB_SCRIPT.flatMap((c) => ['-ex', c]), '--args', process.execPath, ...args];
  return spawnSync('gdb', gdbArgs, { encoding: 'utf8', env: childEnv(), timeout: 540_000, maxBuffer: 64 << 20 });
}

/** How one run of a child ended: its JSON line, or a native crash (signal, phase, and under gdb the crashing thread's frames). */
interface ChildRun {
  line?: string;
  crash?: string;
  frames: string[];
  output: string;
}

function childRun(r: SpawnSyncReturns<string>, what: string): ChildRun {
  const output = `${r.stdout.slice(-6000)}\n${r.stderr.slice(-2000)}`;
  const underGdb = /received signal (SIG\w+)/.exec(r.stdout);
  const signal = underGdb ? underGdb[1] : r.signal;
  if (!signal || !NATIVE_CRASH.has(signal)) {
    const line = lastJsonLine(r.stdout);
    if (!line) throw new Error(`${what} printed no report (exit ${r.status}, signal ${r.signal}, phase '${lastPhase(r.stderr)}'): ${output}`);
    return { line, frames: [], output };
  }
  const marker = r.stdout.lastIndexOf('crashing thread:');
  const frames =
    marker < 0
      ? []
      : r.stdout
          .slice(marker)
          .split('\n')
          .filter((l) => /^#\d+ /.test(l));
  return { crash: `${signal} in phase '${lastPhase(r.stderr)}'`, frames, output };
}

/** A frame in the software Vulkan driver, the Vulkan loader or Dawn (the `webgpu` package). */
const DRIVER_FRAME = /libvk_swiftshader|libvulkan|dawn\.node/;

const CHILD = path.join(__dirname, 'webgpu_child.js');

/**
 * One run of webgpu_child.js with `args`: its JSON line. A child killed by a signal crashed in
 * native code (Dawn or the software Vulkan driver: our kernels are JavaScript and wasm, which throw
 * instead); it is run once more, under gdb where there is one, and a rerun that reports is used. A
 * second crash is run a third time with our fused multiply-add kernels off (CONVNEXT_RELAXED_SIMD=0:
 * no runtime V8 flag, the plain kernels), the one thing besides the driver that differs between
 * machines; if that reports, it is used, and every later child and CLI run gets the same setting.
 * Otherwise a crash whose thread is in the driver (gdb's frames) gives a skip, printing them; any
 * other crash fails. Every crash is printed.
 */
function childLine(args: string[]): string {
  const what = `webgpu_child.js ${args[0]}`;
  const runs = [childRun(spawnNode([CHILD, ...args]), what)];
  if (runs[0].crash) runs.push(childRun(childUnderGdb([CHILD, ...args]), what));
  if (runs[1]?.crash) {
    fallbackEnv.CONVNEXT_RELAXED_SIMD = '0';
    runs.push(childRun(childUnderGdb([CHILD, ...args]), what));
  }
  const last = runs[runs.length - 1];
  const crashes = runs.filter((x) => x.crash).map((x, i) => `${i + 1}. ${x.crash}`);
  const tops = runs.flatMap((x) => x.frames.slice(0, 12)); // each crashing thread's innermost frames
  const frames = tops.map((f) => `        ${f}`);
  if (!last.line) {
    const story = `${what} crashed ${crashes.length} times (the last with CONVNEXT_RELAXED_SIMD=0): ${crashes.join('; ')}`;
    if (tops.some((f) => DRIVER_FRAME.test(f))) {
      console.log(`      ${story}; in the driver:\n${frames.join('\n')}`);
      return JSON.stringify({ skip: `the software Vulkan driver crashes on this machine (${what}: ${crashes.join('; ')})` });
    }
    throw new Error(`${story}; the crashing threads:\n${frames.join('\n')}\nthe last run's output:\n${last.output}`);
  }
  if (crashes.length) {
    const setting = fallbackEnv.CONVNEXT_RELAXED_SIMD ? '; reported with CONVNEXT_RELAXED_SIMD=0 (the plain kernels), which later runs get too' : '';
    console.log(`      note: ${what} crashed (${crashes.join('; ')})${setting}\n${frames.join('\n')}`);
  }
  return last.line;
}

/**
 * The three children, each with one backend: the probe (a skip without an adapter), the wasm half
 * (the reference, into a temp file) and the webgpu half (the report).
 */
function runChild(): ChildReport {
  const probe = JSON.parse(childLine(['probe'])) as ChildReport;
  if (probe.skip || probe.error) return probe;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-webgpu-'));
  try {
    const file = path.join(dir, 'wasm.json');
    const wasm = JSON.parse(childLine(['wasm', file])) as ChildReport;
    if (wasm.error) return wasm;
    return JSON.parse(childLine(['webgpu', file])) as ChildReport;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** runChild's report, once per mocha process (a failure is thrown again, not run again). */
function childReport(): ChildReport {
  if (!report && !failure) {
    try {
      report = runChild();
    } catch (e) {
      failure = e instanceof Error ? e : new Error(String(e));
    }
  }
  if (failure) throw failure;
  return report!;
}

describe('webgpu backend (Dawn; software Vulkan in CI)', function () {
  this.timeout(600_000);
  let r: ChildReport;
  before(function () {
    r = childReport();
    if (r.skip) {
      console.log(`      skipped: no usable WebGPU adapter: ${r.skip}`);
      this.skip();
    }
    expect(r.error, r.error).to.equal(undefined);
    if (process.env.WEBGPU_VERBOSE) console.log(JSON.stringify(r, null, 1));
  });

  it('runs on the adapter it reports', () => {
    expect(r.adapter.description.length).to.be.greaterThan(0);
  });

  it('matches the committed PyTorch parity fixtures (<= 1e-4 relative, identical argmax) and wasm', () => {
    expect(r.fixtures.length).to.be.at.least(10);
    for (const f of r.fixtures) {
      expect(f.logitsRel, `${f.case} logits`).to.be.at.most(1e-4);
      expect(f.prelogitsRel, `${f.case} pre-logits`).to.be.at.most(1e-4);
      expect(f.argmaxEqual, `${f.case} argmax`).to.equal(true);
      expect(f.logitsRelVsWasm, `${f.case} vs wasm`).to.be.at.most(1e-4);
    }
  });

  it('random non-trivial V1/V2 weights: logits, embedding and every stage map equal wasm (<= 1e-4 relative)', () => {
    expect(r.random.map((x) => x.model)).to.deep.equal(['v1', 'v2']);
    for (const m of r.random) {
      expect(m.argmaxEqual, `${m.model} argmax`).to.equal(true);
      for (const k of ['logitsRel', 'embedRel', 'stage0Rel', 'stage1Rel', 'stage2Rel', 'stage3Rel']) {
        expect(m[k], `${m.model} ${k}`).to.be.a('number').and.at.most(1e-4);
      }
    }
  });

  it("a training step's loss and every gradient equal wasm and torch (1e-4 x max|g| + 1e-7 per tensor)", () => {
    expect(r.grads.map((g) => g.case)).to.deep.equal(['v1', 'v2']);
    for (const g of r.grads) {
      expect(g.params).to.be.greaterThan(60);
      expect(Math.abs(g.loss - g.lossWasm) / g.lossWasm, `${g.case} loss vs wasm`).to.be.below(1e-5);
      expect(Math.abs(g.loss - g.lossTorch) / g.lossTorch, `${g.case} loss vs torch`).to.be.below(1e-5);
      expect(g.vsWasm.within, `${g.case} grads vs wasm: worst ${g.vsWasm.worstName} ${g.vsWasm.worstRel}`).to.equal(true);
      expect(g.vsTorch.within, `${g.case} grads vs torch: worst ${g.vsTorch.worstName} ${g.vsTorch.worstRel}`).to.equal(true);
    }
  });

  it('leaks no tensors; our fused kernel names run their composites there (no webgpu kernel registered)', () => {
    expect(r.leaks).to.deep.equal({ forward: 0, grads: 0 });
    expect(r.fused).to.deep.equal({ ConvNeXtGelu: false, ConvNeXtLayerNorm: false });
  });
});

describe('convnext --backend webgpu (CLI)', function () {
  this.timeout(900_000);
  before(function () {
    if (childReport().skip) this.skip();
  });
  const tmp = useTmpDir('convnext-webgpu-');
  const cli = (backend: string, ...args: string[]) => node([BIN, '--backend', backend, ...args]);

  it('forward: logits match the PyTorch fixture; the process ends by itself', () => {
    const dir = path.join(ROOT, 'test/fixtures/parity/v2_official');
    const out = tmp('logits.npy');
    const r = cli('webgpu', 'forward', '--model', path.join(dir, 'convnextv2_test_1k_224_ema.pt'), '--input', path.join(dir, 'input.npy'), '--output', out);
    expect(r.status, r.stderr).to.equal(0);
    expect(rel(readNpyFloat32(out).data, readNpyFloat32(path.join(dir, 'logits.npy')).data)).to.be.at.most(1e-4);
  });

  it('train (with validation), then predict and embed on its model agree with wasm', () => {
    const data = tmp('data');
    for (const [cls, file] of [
      ['cat', 'chelsea.png'],
      ['rocket', 'rocket.jpg'],
    ]) {
      fs.mkdirSync(path.join(data, cls), { recursive: true });
      fs.copyFileSync(path.join(IMAGES, file), path.join(data, cls, file));
    }
    const run = tmp('run');
    const settings = '--arch convnext_atto --epochs 1 --image-size 32 --batch-size 2 --lr 1e-3'.split(' ');
    const t = cli('webgpu', 'train', '--data', data, '--val', data, ...settings, '--out', run, '--json');
    expect(t.status, t.stderr).to.equal(0);
    expect(t.stderr).to.match(/training convnext_atto on webgpu/);
    const rec = JSON.parse(fs.readFileSync(path.join(run, 'log.jsonl'), 'utf8').trim().split('\n')[0]);
    expect(rec.train_loss).to.be.a('number').and.greaterThan(0).and.lessThan(5);
    expect(rec.val_top1).to.be.within(0, 1);
    for (const f of ['checkpoint.safetensors', 'report.json', 'model/model.json']) expect(fs.existsSync(path.join(run, f)), f).to.equal(true);

    const images = [path.join(IMAGES, 'chelsea.png'), path.join(IMAGES, 'rocket.jpg')];
    const predict = (backend: string) => {
      const p = cli(backend, 'predict', ...images, '--model', path.join(run, 'model'), '--top', '2', '--json');
      expect(p.status, p.stderr).to.equal(0);
      return p.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { top: { index: number; prob: number }[] });
    };
    const gpu = predict('webgpu');
    const wasm = predict('wasm');
    expect(gpu.map((l) => l.top[0].index)).to.deep.equal(wasm.map((l) => l.top[0].index));
    for (let i = 0; i < gpu.length; i++) expect(gpu[i].top[0].prob).to.be.closeTo(wasm[i].top[0].prob, 1e-4);

    const embed = (backend: string) => {
      const out = tmp(`emb-${backend}.npy`);
      const e = cli(backend, 'embed', ...images, '--model', path.join(run, 'model'), '--output', out);
      expect(e.status, e.stderr).to.equal(0);
      return readNpyFloat32(out).data;
    };
    expect(rel(embed('webgpu'), embed('wasm'))).to.be.at.most(1e-4);
  });
});
