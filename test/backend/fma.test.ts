/**
 * The fused multiply-add variants of our kernels (src/backend/wasm_simd/fma.ts): the build's rewrite
 * (scripts/wat-fma.js), the runtime's choice, and each fma binary against its plain twin and a
 * float64 reference on the same inputs; a model's logits with and without them ($CONVNEXT_RELAXED_SIMD=0,
 * in child processes: the choice is made once per thread).
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { simdBinary } from '../../src/backend/wasm_simd/binaries';
import { fmaKernels, relaxedSimdSupported } from '../../src/backend/wasm_simd/fma';
import { SimdExports, fusedKernels } from '../../src/backend/wasm_simd/kernels';
import { webAssembly } from '../../src/backend/webassembly';
import { initBackend } from '../../src/backend';
import { settings } from '../../src/env';
import { ROOT, maxAbs, randn } from '../helpers';
import { nd, refDepthwise } from '../reference';

const { fuseMultiplyAdds } = require(path.join(ROOT, 'scripts', 'wat-fma.js')) as { fuseMultiplyAdds(text: string): { text: string; count: number } };

/** The kernels with an fma variant, and how many multiply-adds each has. */
const FUSED = { gemm: 10, depthwise_nhwc: 5, depthwise_filter_grad: 14 };

/** Whether relaxed_madd is one fused instruction here (V8: vfmadd on x64 with FMA3, fmla on arm64). */
function cpuFuses(): boolean {
  if (process.arch === 'arm64') return true;
  try {
    return /\bfma\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

describe('fused multiply-add kernels (relaxed SIMD)', () => {
  describe('the build rewrite (scripts/wat-fma.js)', () => {
    it('fuses (f32x4.add X (f32x4.mul Y Z)) into (f32x4.relaxed_madd Y Z X), nested ones too', () => {
      const r = fuseMultiplyAdds('(local.set $a (f32x4.add (local.get $a) (f32x4.mul (v128.load (local.get $p)) (local.get $w))))');
      expect(r).to.deep.equal({ text: '(local.set $a (f32x4.relaxed_madd (v128.load (local.get $p)) (local.get $w) (local.get $a)))', count: 1 });
      const nested = fuseMultiplyAdds(
        '(f32x4.add (f32x4.add (local.get $c) (f32x4.mul (local.get $x) (local.get $y))) (f32x4.mul (local.get $u) (local.get $v)))',
      );
      expect(nested).to.deep.equal({
        text: '(f32x4.relaxed_madd (local.get $u) (local.get $v) (f32x4.relaxed_madd (local.get $x) (local.get $y) (local.get $c)))',
        count: 2,
      });
    });

    it('leaves every other shape, and comments, as they are', () => {
      for (const text of [
        '(f32x4.add (f32x4.mul (local.get $x) (local.get $y)) (local.get $a))', // product first: not the order the kernels sum in
        '(f32x4.add (local.get $a) (f32x4.sub (local.get $x) (local.get $y)))',
        '(f32x4.add (local.get $a) (f32x4.mul (local.get $x) (local.get $y)) (local.get $b))', // not binary
        ';; (f32x4.add (local.get $a) (f32x4.mul (local.get $x) (local.get $y)))',
      ]) {
        expect(fuseMultiplyAdds(text), text).to.deep.equal({ text, count: 0 });
      }
    });

    it('fuses every multiply of the marked kernels, and only those kernels are marked', () => {
      const dir = path.join(ROOT, 'src', 'backend', 'wasm_simd');
      const marked = fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.wat') && /^;; fma variant\b/m.test(fs.readFileSync(path.join(dir, f), 'utf8')))
        .map((f) => f.replace(/\.wat$/, ''));
      expect(marked.sort()).to.deep.equal(Object.keys(FUSED).sort());
      for (const [name, count] of Object.entries(FUSED)) {
        const fused = fuseMultiplyAdds(fs.readFileSync(path.join(dir, `${name}.wat`), 'utf8'));
        expect(fused.count, name).to.equal(count);
        expect(fused.text, name).not.to.match(/f32x4\.mul/);
      }
    });
  });

  describe('the runtime choice', () => {
    before(() => initBackend({ backend: 'wasm' }));

    it('initBackend lets V8 compile relaxed SIMD (Node 20: its flag), and the wasm kernels are the fma ones', async () => {
      const wanted = settings.relaxedSimd(); // a developer's $CONVNEXT_RELAXED_SIMD=0 run expects the plain ones
      expect(relaxedSimdSupported()).to.equal(wanted);
      expect(fmaKernels()).to.equal(wanted);
      expect(fusedKernels(tf.backend())).to.equal(wanted);
      expect((await initBackend({ backend: 'wasm' })).fma).to.equal(wanted);
    });

    it('a kernel without a variant serves its plain binary', () => {
      expect(Buffer.from(simdBinary('gelu', false, true)).equals(Buffer.from(simdBinary('gelu', false)))).to.equal(true);
      expect(Buffer.from(simdBinary('gemm', false, true)).equals(Buffer.from(simdBinary('gemm', false)))).to.equal(false);
    });
  });

  describe('each fma binary against its plain twin and float64', () => {
    type Kernels = Pick<SimdExports, 'gemm_f32' | 'gemm_tn_f32' | 'gemm_nt_f32' | 'depthwise_nhwc' | 'depthwise_filter_grad7_nhwc'>;
    let memory: { buffer: ArrayBuffer };
    const variants: Record<'plain' | 'fma', Kernels> = {} as Record<'plain' | 'fma', Kernels>;
    let heap: Float32Array;
    /** Bump allocation (bytes, 64-aligned) on a fresh memory per case. */
    let top = 0;
    const alloc = (floats: number): number => {
      const at = top;
      top += Math.ceil((4 * floats) / 64) * 64;
      return at;
    };
    const put = (data: Float32Array): number => {
      const at = alloc(data.length);
      heap.set(data, at / 4);
      return at;
    };

    before(async () => {
      await initBackend({ backend: 'wasm' }); // relaxed SIMD compiles
      memory = new webAssembly!.Memory({ initial: 256, maximum: 256, shared: false }) as { buffer: ArrayBuffer };
      for (const fma of [false, true]) {
        const exports = {};
        for (const name of Object.keys(FUSED)) {
          Object.assign(exports, new webAssembly!.Instance(new webAssembly!.Module(simdBinary(name, false, fma)), { env: { memory } }).exports);
        }
        variants[fma ? 'fma' : 'plain'] = exports as Kernels;
      }
      heap = new Float32Array(memory.buffer);
    });
    beforeEach(() => {
      top = 64;
      heap.fill(0);
    });

    /** Runs both variants (output: ref.length floats at byte offset `out`) and checks each against `ref`. */
    function compare(run: (k: Kernels) => void, out: number, ref: Float64Array): void {
      const got: Record<string, Float32Array> = {};
      for (const [name, k] of Object.entries(variants)) {
        heap.fill(0, out / 4, out / 4 + ref.length);
        run(k);
        got[name] = heap.slice(out / 4, out / 4 + ref.length);
      }
      const scale = Math.max(1, maxAbs(ref));
      for (const [name, v] of Object.entries(got)) {
        let worst = 0;
        for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(v[i] - ref[i]));
        expect(worst / scale, `${name}: worst error / scale`).to.be.below(1e-5);
      }
      // one rounding per multiply-add instead of two: other bits (the same where V8 cannot fuse)
      if (cpuFuses()) expect(Buffer.from(got.fma.buffer).equals(Buffer.from(got.plain.buffer)), 'fma and plain bits').to.equal(false);
    }

    for (const form of ['nn', 'tn', 'nt'] as const) {
      it(`gemm ${form}: C = ${form === 'tn' ? 'A^T B' : form === 'nt' ? 'A B^T' : 'A B + bias'} (70 x 300 x 40)`, () => {
        const [m, k, n] = [70, 300, 40];
        const a = randn(m * k, `fma-a-${form}`);
        const b = randn(k * n, `fma-b-${form}`);
        const bias = randn(n, `fma-bias-${form}`);
        const at = (i: number, kk: number): number => (form === 'tn' ? a[kk * m + i] : a[i * k + kk]);
        const bt = (kk: number, j: number): number => (form === 'nt' ? b[j * k + kk] : b[kk * n + j]);
        const ref = new Float64Array(m * n);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = form === 'nn' ? bias[j] : 0;
            for (let kk = 0; kk < k; kk++) s += at(i, kk) * bt(kk, j);
            ref[i * n + j] = s;
          }
        }
        const [pa, pb, pbias, pc] = [put(a), put(b), put(bias), alloc(m * n)];
        const [scratch, packed] = [alloc(8 * 512), alloc(256 * 512)];
        const fn = form === 'tn' ? 'gemm_tn_f32' : form === 'nt' ? 'gemm_nt_f32' : 'gemm_f32';
        compare((kern) => kern[fn](pa, pb, form === 'nn' ? pbias : -1, pc, m, k, n, scratch, 512, packed, 256), pc, ref);
      });
    }

    it('depthwise 7x7 with bias (2 x 9 x 11 x 8, NHWC)', () => {
      const [n, h, w, c, k] = [2, 9, 11, 8, 7];
      const x = randn(n * h * w * c, 'fma-dx');
      const f = randn(k * k * c, 'fma-dw', 0.3);
      const bias = randn(c, 'fma-db');
      const ref = refDepthwise(nd([n, h, w, c], x), nd([k, k, c, 1], f), bias).data;
      const [px, pf, pb, py] = [put(x), put(f), put(bias), alloc(ref.length)];
      compare((kern) => kern.depthwise_nhwc(px, pf, pb, py, n, h, w, c, k), py, ref);
    });

    it('depthwise 7x7 filter gradient (3 x 10 x 12 x 8, NHWC)', () => {
      const [n, h, w, c] = [3, 10, 12, 8];
      const x = randn(n * h * w * c, 'fma-gx');
      const dy = randn(n * h * w * c, 'fma-gdy');
      const ref = new Float64Array(49 * c);
      for (let ky = 0; ky < 7; ky++)
        for (let kx = 0; kx < 7; kx++)
          for (let ch = 0; ch < c; ch++) {
            let s = 0;
            for (let b = 0; b < n; b++)
              for (let oy = 0; oy < h; oy++)
                for (let ox = 0; ox < w; ox++) {
                  const [iy, ix] = [oy + ky - 3, ox + kx - 3];
                  if (iy >= 0 && iy < h && ix >= 0 && ix < w) s += x[((b * h + iy) * w + ix) * c + ch] * dy[((b * h + oy) * w + ox) * c + ch];
                }
            ref[(ky * 7 + kx) * c + ch] = s;
          }
      const [px, pdy, pdw] = [put(x), put(dy), alloc(ref.length)];
      compare((kern) => kern.depthwise_filter_grad7_nhwc(px, pdy, pdw, n, h, w, c), pdw, ref);
    });
  });

  describe('a model with and without them (child processes)', () => {
    const SCRIPT = `
const tf = require('@tensorflow/tfjs-core');
const { initBackend } = require(${JSON.stringify(path.join(ROOT, 'dist/src/backend'))});
const { createModel } = require(${JSON.stringify(path.join(ROOT, 'dist/src'))});
(async () => {
  const info = await initBackend({ backend: 'wasm', threads: Number(process.argv[1]) });
  const model = createModel('convnext_atto', { seed: 7 });
  const x = tf.randomNormal([2, 64, 64, 3], 0, 1, 'float32', 3);
  const logits = Array.from(model.forward(x).dataSync());
  process.stdout.write(JSON.stringify({ fma: info.fma, threads: info.threads, logits }));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
`;
    const run = (env: NodeJS.ProcessEnv, threads: number): Promise<{ fma: boolean; threads: number; logits: number[] }> =>
      new Promise((resolve, reject) =>
        execFile(process.execPath, ['-e', SCRIPT, String(threads)], { env: { ...process.env, ...env }, cwd: ROOT }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)),
        ),
      );

    it('convnext_atto logits agree to float32 rounding, one thread and two', async () => {
      for (const threads of [1, 2]) {
        const fused = await run({}, threads);
        const plain = await run({ CONVNEXT_RELAXED_SIMD: '0' }, threads);
        expect([fused.fma, plain.fma, fused.threads], `threads ${threads}`).to.deep.equal([true, false, threads]);
        const scale = Math.max(1, maxAbs(plain.logits));
        let worst = 0;
        for (let i = 0; i < plain.logits.length; i++) worst = Math.max(worst, Math.abs(fused.logits[i] - plain.logits[i]));
        expect(worst / scale, `threads ${threads}`).to.be.below(1e-5);
      }
    });
  });
});
