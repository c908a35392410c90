// @ts-check
/**
 * The library and its demo page in a real browser: Debian's chromium, headless, through
 * puppeteer-core, on a static server on 127.0.0.1 (test/browser/harness.js). Needs `npm run build`
 * (the Node side gives the reference answers) and `npm run build:browser`; run by
 * `npm run test:browser`, outside the main suite.
 *
 * The models are small converted fixtures (test/fixtures/parity/v1_official and v2_timm: random
 * non-trivial weights, V2 with GRN); the image is test/fixtures/images/chelsea.png.
 * - wasm in the page equals Node's Predictor on wasm (every probability within 1e-4, same top-1),
 *   with our SIMD kernels on; preprocessing in the page equals Node's bit for bit;
 * - WebGL (software, SwiftShader) and WebGPU (SwiftShader via Dawn, where the browser offers an
 *   adapter) within their measured tolerance (WEBGL_TOL / WEBGPU_TOL below);
 * - the converter in the page gives Node's weights exactly (torch zip, deflated zip, legacy,
 *   V2 timm, HF safetensors + config.json), and a checkpoint picked in the demo gives Node's answer;
 * - a cross-origin isolated page runs the threaded wasm build (and our shared-memory kernels);
 * - no console errors; a screenshot goes to test-artifacts/browser.png.
 */
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { expect } = require('chai');
const { ROOT, demoReady, demoResult, launchBrowser, openPage, startServer } = require('./harness');

const FIX = path.join(ROOT, 'test', 'fixtures');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
/** Probabilities: wasm in the page vs wasm in Node. */
const WASM_TOL = 1e-4;
/** WebGL / WebGPU vs Node's wasm: measured here (max |dp| ~1e-7 on SwiftShader), bound with margin. */
const WEBGL_TOL = 1e-5;
const WEBGPU_TOL = 1e-5;
const TOPK = 10; // every class of the fixture model

/** @type {any} */
let lib;
/** @type {string} */
let tmp;
/** @type {{ url: string, close: () => Promise<void> }} */
let server;
/** @type {{ url: string, close: () => Promise<void> }} */
let isolatedServer;
/** @type {import('puppeteer-core').Browser} */
let browser;
/** @type {{ label: string, index: number, prob: number }[]} */
let nodeTop;
/** @type {{ label: string, index: number, prob: number }[]} */
let nodeTopV2;
/** @type {Float32Array} */
let nodeInput;
/** @type {[number, number]} */
let nodeSize;

/** A copy of a torch zip checkpoint with every entry deflated (torch itself stores). */
function deflatedCopy(src, dst) {
  const py = [
    'import sys, zipfile',
    'src, dst = sys.argv[1], sys.argv[2]',
    'with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as b:',
    '    [b.writestr(i.filename, a.read(i)) for i in a.infolist()]',
  ].join('\n');
  execFileSync('python3', ['-c', py, src, dst]);
}

/** A torch-legacy (torch < 1.6 format) copy of a zip checkpoint, where Debian's torch is installed; else false. */
function legacyCopy(src, dst) {
  const py = 'import sys, torch\nsd = torch.load(sys.argv[1], map_location="cpu")\ntorch.save(sd, sys.argv[2], _use_new_zipfile_serialization=False)';
  try {
    execFileSync('/usr/bin/python3', ['-c', py, src, dst], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

function byIndex(top) {
  return new Map(top.map((t) => [t.index, t.prob]));
}

function maxProbDiff(a, b) {
  const m = byIndex(b);
  expect(a.length).to.equal(b.length);
  return Math.max(...a.map((t) => Math.abs(t.prob - /** @type {number} */ (m.get(t.index)))));
}

/** Fails with the page's console errors, if any. */
function expectNoErrors(errors) {
  expect(errors, errors.join('\n')).to.deep.equal([]);
}

/**
 * Runs `fn` on a fresh page, which must log no error (console.error, page error, failed request)
 * meanwhile, and closes the page after it.
 * @param {import('puppeteer-core').Browser} browser
 * @param {(page: import('puppeteer-core').Page) => Promise<void>} fn
 */
async function inPage(browser, fn) {
  const { page, errors } = await openPage(browser);
  try {
    await fn(page);
    expectNoErrors(errors);
  } finally {
    await page.close();
  }
}

const CHECKPOINTS = [
  ['v1_official/checkpoint.pth', 'torch zip, official V1'],
  ['deflated.pth', 'torch zip, deflated entries'],
  ['legacy.pth', 'torch legacy (made by torch.save here; skipped without Debian torch)'],
  ['v2_timm/convnextv2_test.pth', 'timm V2 (GRN)'],
  ['v1_hf_safetensors/model.safetensors', 'HF safetensors + config.json'],
];

describe('browser (headless chromium)', function () {
  this.timeout(600000);

  before(async () => {
    lib = require(path.join(ROOT, 'dist', 'src'));
    const { convertCheckpoint } = require(path.join(ROOT, 'dist', 'weights-converter', 'convert'));
    const { writeModelDir } = require(path.join(ROOT, 'dist', 'src', 'io', 'model_dir'));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-browser-'));
    const c = await convertCheckpoint(path.join(FIX, 'parity', 'v1_official', 'checkpoint.pth'));
    writeModelDir(path.join(tmp, 'model'), c.weights, c.meta);
    writeModelDir(path.join(tmp, 'model_fp16'), c.weights, c.meta, { fp16: true });
    const c2 = await convertCheckpoint(path.join(FIX, 'parity', 'v2_timm', 'convnextv2_test.pth'));
    writeModelDir(path.join(tmp, 'model_v2'), c2.weights, c2.meta);
    deflatedCopy(path.join(FIX, 'parity', 'v1_official', 'checkpoint.pth'), path.join(tmp, 'deflated.pth'));
    if (!legacyCopy(path.join(FIX, 'parity', 'v1_official', 'checkpoint.pth'), path.join(tmp, 'legacy.pth')))
      console.log('      (no /usr/bin/python3 torch: the legacy-format case is skipped)');

    await lib.initBackend({ backend: 'wasm', threads: 1 });
    const p = await lib.Predictor.load(path.join(tmp, 'model'));
    [nodeTop] = await p.classify(path.join(FIX, 'images', 'chelsea.png'), { topk: TOPK });
    nodeInput = await p.preprocess(path.join(FIX, 'images', 'chelsea.png'));
    const img = await lib.decodeImage(path.join(FIX, 'images', 'chelsea.png'));
    nodeSize = [img.width, img.height];
    await p.dispose();
    const p2 = await lib.Predictor.load(path.join(tmp, 'model_v2'));
    [nodeTopV2] = await p2.classify(path.join(FIX, 'images', 'chelsea.png'), { topk: p2.model.numClasses });
    await p2.dispose();

    const mounts = { '/fixtures/': tmp + path.sep, '/images/': path.join(FIX, 'images') + path.sep, '/parity/': path.join(FIX, 'parity') + path.sep };
    server = await startServer({ mounts });
    isolatedServer = await startServer({ mounts, isolated: true });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await isolatedServer?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const demo = (base, q) => `${base}/index.html?model=/fixtures/model/&image=/images/chelsea.png&topk=${TOPK}&${q}`;

  it('wasm: the demo gives Node predict’s probabilities (within 1e-4), with our SIMD kernels on', async () => {
    await inPage(browser, async (page) => {
      const r = await demoResult(page, demo(server.url, 'backend=wasm'));
      expect(r.error, r.error).to.equal(undefined);
      expect(r.backend).to.equal('wasm');
      expect(r.top[0].index).to.equal(nodeTop[0].index);
      const d = maxProbDiff(r.top, nodeTop);
      console.log(`      wasm: max |p - p_node| = ${d.toExponential(2)}, ${r.ms} ms`);
      expect(d).to.be.at.most(WASM_TOL);
      expect(r.top.map((t) => t.label)).to.deep.equal(nodeTop.map((t) => t.label));
      const simd = await page.evaluate(async () => {
        const m = await import('./convnext-tfjs.js');
        return {
          on: m.simdKernelsFor(m.tf.backend()) !== null,
          kernel: m.tf.getKernel('ConvNeXtGelu', 'wasm') !== undefined,
          fma: m.fusedKernels(m.tf.backend()),
          threads: m.tf.backend().wasm ? 1 : 0,
        };
      });
      expect(simd.on, 'SIMD kernels bound to the wasm heap').to.equal(true);
      expect(simd.kernel, 'ConvNeXtGelu kernel registered').to.equal(true);
      expect(simd.fma, 'the fused multiply-add kernels (Chromium compiles relaxed SIMD)').to.equal(true);
      // The 2D maps of the four stages were drawn.
      expect(await page.$$eval('#stages canvas', (cs) => cs.map((c) => /** @type {HTMLCanvasElement} */ (c).width))).to.deep.equal([56, 28, 14, 7]);
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'browser.png'), fullPage: true });
      expect(fs.statSync(path.join(ARTIFACTS, 'browser.png')).size).to.be.above(10000);
    });
  });

  it('preprocessing in the page (createImageBitmap + Pillow-exact resize) equals Node’s bit for bit', async () => {
    await inPage(browser, async (page) => {
      await demoReady(page, `${server.url}/index.html?backend=cpu`);
      const x = await page.evaluate(async () => {
        const m = await import('./convnext-tfjs.js');
        const img = await m.decodeBrowserImage('/images/chelsea.png');
        const t = m.evalTransform(img);
        return { shape: t.shape, data: Array.from(t.data), w: img.width, h: img.height };
      });
      expect([x.w, x.h]).to.deep.equal(nodeSize);
      expect(x.shape).to.deep.equal([1, 224, 224, 3]);
      let maxDiff = 0;
      for (let i = 0; i < nodeInput.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x.data[i] - nodeInput[i]));
      expect(x.data.length).to.equal(nodeInput.length);
      expect(maxDiff).to.equal(0);
    });
  });

  it(`webgl (software GL): within ${WEBGL_TOL} of Node's probabilities`, async () => {
    await inPage(browser, async (page) => {
      const r = await demoResult(page, demo(server.url, 'backend=webgl'));
      expect(r.error, r.error).to.equal(undefined);
      expect(r.backend).to.equal('webgl');
      const d = maxProbDiff(r.top, nodeTop);
      console.log(`      webgl: max |p - p_node| = ${d.toExponential(2)}, ${r.ms} ms`);
      expect(r.top[0].index).to.equal(nodeTop[0].index);
      expect(d).to.be.at.most(WEBGL_TOL);
    });
  });

  it(`V2 (GRN, timm layout): wasm equals Node (1e-4), webgl within ${WEBGL_TOL}`, async () => {
    for (const [backend, tol] of /** @type {[string, number][]} */ ([
      ['wasm', WASM_TOL],
      ['webgl', WEBGL_TOL],
    ])) {
      await inPage(browser, async (page) => {
        const r = await demoResult(
          page,
          `${server.url}/index.html?model=/fixtures/model_v2/&image=/images/chelsea.png&topk=${nodeTopV2.length}&backend=${backend}`,
        );
        expect(r.error, r.error).to.equal(undefined);
        expect(r.backend).to.equal(backend);
        const d = maxProbDiff(r.top, nodeTopV2);
        console.log(`      V2 ${backend}: max |p - p_node| = ${d.toExponential(2)}`);
        expect(r.top[0].index).to.equal(nodeTopV2[0].index);
        expect(d).to.be.at.most(tol);
      });
    }
  });

  it(`auto picks webgpu where an adapter exists (within ${WEBGPU_TOL}), else names why it skipped it`, async () => {
    await inPage(browser, async (page) => {
      const r = await demoResult(page, demo(server.url, 'backend=auto'));
      expect(r.error, r.error).to.equal(undefined);
      const info = await page.evaluate(() => /** @type {any} */ (window).convnextDemo.backend());
      if (r.backend === 'webgpu') {
        const d = maxProbDiff(r.top, nodeTop);
        console.log(`      webgpu: max |p - p_node| = ${d.toExponential(2)}, ${r.ms} ms`);
        expect(r.top[0].index).to.equal(nodeTop[0].index);
        expect(d).to.be.at.most(WEBGPU_TOL);
      } else {
        expect(r.backend).to.equal('webgl');
        expect(info.skipped[0].package).to.equal('@tensorflow/tfjs-backend-webgpu');
        expect(info.skipped[0].reason).to.match(/gpu|adapter/);
        console.log(`      webgpu skipped: ${info.skipped[0].reason}`);
      }
    });
  });

  it('the converter in the page gives exactly Node’s weights (zip, deflated zip, legacy, V2, HF safetensors)', async () => {
    const { convertCheckpoint } = require(path.join(ROOT, 'dist', 'weights-converter', 'convert'));
    await inPage(browser, async (page) => {
      await demoReady(page, `${server.url}/index.html?backend=cpu`);
      for (const [rel, what] of CHECKPOINTS) {
        if (rel === 'legacy.pth' && !fs.existsSync(path.join(tmp, rel))) continue;
        const url = fs.existsSync(path.join(tmp, rel)) ? `/fixtures/${rel}` : `/parity/${rel}`;
        const file = fs.existsSync(path.join(tmp, rel)) ? path.join(tmp, rel) : path.join(FIX, 'parity', rel);
        const hf = rel.includes('_hf_') ? `/parity/${path.dirname(rel)}/config.json` : null;
        const got = await page.evaluate(
          async (url, hf) => {
            const m = await import('./convnext-tfjs.js');
            const bytes = await (await fetch(url)).arrayBuffer();
            const hfConfig = hf ? await (await fetch(hf)).json() : undefined;
            const c = await m.convertCheckpointBytes(bytes, { name: url.replace(/^.*\//, ''), hfConfig });
            return {
              config: c.config,
              source: c.meta.source,
              weights: [...c.weights].map(([name, w]) => ({ name, shape: w.shape, data: Array.from(w.data) })),
            };
          },
          url,
          hf,
        );
        const want = await convertCheckpoint(file);
        expect(got.config, what).to.deep.equal(JSON.parse(JSON.stringify(want.config)));
        expect(got.source.format, what).to.equal(want.meta.source.format);
        expect(
          got.weights.map((w) => w.name),
          what,
        ).to.deep.equal([...want.weights.keys()]);
        for (const w of got.weights) {
          const ref = want.weights.get(w.name);
          expect(w.shape, `${what}: ${w.name}`).to.deep.equal(ref.shape);
          expect(Float32Array.from(w.data), `${what}: ${w.name}`).to.deep.equal(ref.data);
        }
      }
    });
  });

  it('a checkpoint picked in the demo is converted in the page and gives Node’s answer', async () => {
    await inPage(browser, async (page) => {
      await page.goto(`${server.url}/index.html?backend=wasm&topk=${TOPK}`);
      await page.waitForFunction(() => /backend wasm/.test(document.getElementById('status')?.textContent || ''));
      const model = /** @type {import('puppeteer-core').ElementHandle<HTMLInputElement>} */ (await page.$('#model-file'));
      await model.uploadFile(path.join(FIX, 'parity', 'v1_official', 'checkpoint.pth'));
      await page.waitForFunction(() => /ready/.test(document.getElementById('status')?.textContent || ''));
      const image = /** @type {import('puppeteer-core').ElementHandle<HTMLInputElement>} */ (await page.$('#image-file'));
      await image.uploadFile(path.join(FIX, 'images', 'chelsea.png'));
      await page.waitForFunction(() => (document.getElementById('result')?.textContent || '').length > 0);
      const r = JSON.parse((await page.$eval('#result', (e) => e.textContent)) || 'null');
      expect(r.error, r.error).to.equal(undefined);
      expect(r.top[0].index).to.equal(nodeTop[0].index);
      expect(maxProbDiff(r.top, nodeTop)).to.be.at.most(WASM_TOL);
    });
  });

  it('?model=<checkpoint URL>: the demo downloads it with progress, converts it in the page, Node’s answer', async () => {
    await inPage(browser, async (page) => {
      await page.evaluateOnNewDocument(() => {
        // Records the progress bar's values as the demo sets them.
        const seen = /** @type {number[]} */ ([]);
        /** @type {any} */ (window).progressSeen = seen;
        const desc = /** @type {PropertyDescriptor} */ (Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value'));
        Object.defineProperty(HTMLProgressElement.prototype, 'value', {
          get() {
            return desc.get?.call(this);
          },
          set(v) {
            seen.push(v / (this.max || 1));
            desc.set?.call(this, v);
          },
        });
      });
      const r = await demoResult(page, `${server.url}/index.html?backend=wasm&model=/parity/v1_official/checkpoint.pth&image=/images/chelsea.png&topk=${TOPK}`);
      expect(r.error, r.error).to.equal(undefined);
      expect(maxProbDiff(r.top, nodeTop)).to.be.at.most(WASM_TOL);
      const seen = await page.evaluate(() => /** @type {any} */ (window).progressSeen);
      expect(
        seen.some((v) => v > 0 && v <= 1),
        `progress values ${seen}`,
      ).to.equal(true);
      expect(await page.$eval('#status', (e) => e.textContent)).to.equal('done');
    });
  });

  it('model directories load over fetch with progress events; the fp16 model stays within 2e-3; nothing leaks', async () => {
    await inPage(browser, async (page) => {
      await demoReady(page, `${server.url}/index.html?backend=wasm`);
      const out = await page.evaluate(async () => {
        const m = await import('./convnext-tfjs.js');
        /** @type {{ status: string, loaded: number, total: number }[]} */
        const events = [];
        const before = m.tf.memory().numTensors;
        const p = await m.BrowserPredictor.load('/fixtures/model_fp16/', {
          onProgress: (e) => events.push({ status: e.status, loaded: e.loaded, total: e.total }),
        });
        const top = await p.classify('/images/chelsea.png', { topk: 10 });
        const loaded = m.tf.memory().numTensors;
        await p.classifyWithStages('/images/chelsea.png');
        const afterStages = m.tf.memory().numTensors;
        p.dispose();
        return { events, top, before, loaded, afterStages, after: m.tf.memory().numTensors };
      });
      expect(out.events[0].status).to.equal('manifest');
      expect(out.events.at(-1)).to.deep.include({ status: 'done' });
      const weights = out.events.filter((e) => e.status === 'weights');
      expect(weights.length).to.be.above(0);
      expect(weights.at(-1).loaded).to.equal(weights.at(-1).total);
      expect(out.top[0].index).to.equal(nodeTop[0].index);
      expect(maxProbDiff(out.top, nodeTop)).to.be.at.most(2e-3);
      // Nothing leaks: classify and classifyWithStages keep the tensor count; dispose frees the weights.
      expect(out.loaded).to.be.above(out.before);
      expect(out.afterStages).to.equal(out.loaded);
      expect(out.after).to.equal(out.before);
    });
  });

  it('a cross-origin isolated page runs the threaded wasm build with our shared-memory kernels, same answer', async () => {
    await inPage(browser, async (page) => {
      // tfjs-backend-wasm sizes XNNPACK's pool as min(requested, cores / 2): on a 2-core machine that
      // is 1; the page is told of 4 cores so that 2 threads really split the work here too.
      await page.evaluateOnNewDocument(() => Object.defineProperty(navigator, 'hardwareConcurrency', { get: () => 4 }));
      const r = await demoResult(page, demo(isolatedServer.url, 'backend=wasm'));
      expect(r.error, r.error).to.equal(undefined);
      const state = await page.evaluate(async () => {
        const m = await import('./convnext-tfjs.js');
        const b = /** @type {any} */ (m.tf.backend());
        return {
          isolated: crossOriginIsolated,
          threads: /** @type {any} */ (window).convnextDemo.backend().threads,
          shared: b.wasm.wasmMemory?.buffer instanceof SharedArrayBuffer,
          simd: m.simdKernelsFor(b) !== null,
          fma: m.fusedKernels(b),
        };
      });
      expect(state.isolated).to.equal(true);
      expect(state.threads).to.equal(2);
      expect(state.shared).to.equal(true);
      expect(state.simd).to.equal(true);
      expect(state.fma, 'the shared-memory kernels fused too').to.equal(true);
      expect(r.top[0].index).to.equal(nodeTop[0].index);
      expect(maxProbDiff(r.top, nodeTop)).to.be.at.most(WASM_TOL);
    });
  });

  it('bundlers resolve convnext-tfjs to the browser build (exports "browser" condition); Node to dist/src', async () => {
    const esbuild = require('esbuild');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-bundler-'));
    try {
      fs.mkdirSync(path.join(dir, 'node_modules'));
      fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'convnext-tfjs'), 'dir');
      fs.writeFileSync(
        path.join(dir, 'entry.js'),
        "import { BrowserPredictor, initBackend } from 'convnext-tfjs';\nexport { BrowserPredictor, initBackend };\n",
      );
      const r = await esbuild.build({
        entryPoints: [path.join(dir, 'entry.js')],
        absWorkingDir: dir,
        bundle: true,
        write: false,
        platform: 'browser',
        format: 'esm',
        metafile: true,
        logLevel: 'silent',
      });
      const inputs = Object.keys(r.metafile.inputs);
      expect(
        inputs.some((i) => i.endsWith('dist/browser/convnext-tfjs.js')),
        inputs.join(', '),
      ).to.equal(true);
      expect(
        inputs.some((i) => i.includes('dist/src/')),
        'no Node build in a browser bundle',
      ).to.equal(false);
      expect(require.resolve('convnext-tfjs', { paths: [dir] })).to.equal(path.join(ROOT, 'dist', 'src', 'index.js'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a bad model URL ends in a clear error in #result, not an exception', async () => {
    const { page, errors } = await openPage(browser);
    const r = await demoResult(page, `${server.url}/index.html?backend=cpu&model=/fixtures/nope/&image=/images/chelsea.png`);
    expect(r.error).to.match(/nope\/model\.json: HTTP 404/);
    // The 404 itself is the only console error.
    expect(errors.filter((e) => !/404/.test(e))).to.deep.equal([]);
    await page.close();
  });
});
