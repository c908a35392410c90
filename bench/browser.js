#!/usr/bin/env node
// @ts-check
/**
 * ms/img per backend in headless chromium, as ratios to Node's wasm in the same run
 * (`npm run bench:browser`, after build:browser). One page per backend (the demo's index.html,
 * ?backend=...), seeded random weights, batch 1 at 224: one warm-up forward (shader compilation),
 * then `--runs` timed forwards (model.forward + reading the logits back): median and fastest. Node's row is
 * the same measurement on its wasm backend (1 thread, our SIMD kernels), taken before and after the
 * page rows (the faster median counts), so a loaded machine slows both alike. wasm-threads: a cross-origin isolated page, told of twice the
 * machine's cores (tfjs-backend-wasm sizes XNNPACK's pool as min(requested, cores / 2)).
 *
 *   node bench/browser.js [--arch convnext_atto,convnext_tiny] [--backends wasm,wasm-threads,webgl,webgpu] [--runs 5]
 *
 * Prints one JSON line per (arch, backend) and a markdown table.
 */
'use strict';
const os = require('os');
const path = require('path');
const { ROOT, demoReady, launchBrowser, openPage, startServer } = require('../test/browser/harness');

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The timed loop, run in Node and (serialised) in the page alike. */
async function timeForward(m, arch, runs) {
  const model = m.createModel(arch);
  const x = m.tf.randomNormal([1, 224, 224, 3]);
  const once = async () => {
    const t0 = performance.now();
    const y = model.forward(x);
    await y.data();
    y.dispose();
    return performance.now() - t0;
  };
  await once();
  const ts = [];
  for (let i = 0; i < runs; i++) ts.push(await once());
  model.dispose();
  x.dispose();
  return ts.sort((a, b) => a - b);
}

async function main() {
  const archs = arg('arch', 'convnext_atto,convnext_tiny').split(',');
  const backends = arg('backends', 'wasm,wasm-threads,webgl,webgpu').split(',');
  const runs = Number(arg('runs', '5'));
  const lib = require(path.join(ROOT, 'dist', 'src'));
  const tf = require(require.resolve('@tensorflow/tfjs-core', { paths: [ROOT] }));
  await lib.initBackend({ backend: 'wasm', threads: 1 });
  const plain = await startServer();
  const isolated = await startServer({ isolated: true });
  const browser = await launchBrowser();
  const rows = [];
  try {
    for (const arch of archs) {
      // Node before and after the browser rows; the faster of the two medians is the reference.
      const nodeTimes = await timeForward({ createModel: lib.createModel, tf }, arch, runs);
      const nodeRow = { arch, backend: 'node wasm', threads: 1, ms: median(nodeTimes), min: nodeTimes[0], ratio: 1 };
      rows.push(nodeRow);
      const first = rows.length;
      for (const b of backends) {
        const threaded = b === 'wasm-threads';
        const { page, errors } = await openPage(browser);
        if (threaded) await page.evaluateOnNewDocument((n) => Object.defineProperty(navigator, 'hardwareConcurrency', { get: () => n }), 2 * os.cpus().length);
        await demoReady(page, `${threaded ? isolated.url : plain.url}/index.html?backend=${threaded ? 'wasm' : b}`).catch((e) => errors.push(e.message));
        const info = await page.evaluate(() => /** @type {any} */ (window).convnextDemo?.backend() ?? null);
        let ms = null;
        let min = null;
        let error = errors.join('; ') || undefined;
        if (info) {
          try {
            const times = await page.evaluate(`(async () => (${timeForward})(await import('./convnext-tfjs.js'), ${JSON.stringify(arch)}, ${runs}))()`);
            ms = median(times);
            min = times[0];
          } catch (e) {
            error = e instanceof Error ? e.message.split('\n')[0] : String(e);
          }
        }
        const row = { arch, backend: b, got: info?.backend ?? null, threads: info?.threads ?? null, ms, min, ratio: null, error };
        rows.push(row);
        process.stdout.write(`${JSON.stringify(row)}\n`);
        await page.close();
      }
      const again = await timeForward({ createModel: lib.createModel, tf }, arch, runs);
      nodeRow.ms = Math.min(nodeRow.ms, median(again));
      nodeRow.min = Math.min(nodeRow.min, again[0]);
      for (const r of rows.slice(first)) r.ratio = r.ms === null ? null : r.ms / nodeRow.ms;
      process.stdout.write(`${JSON.stringify(nodeRow)}\n`);
    }
  } finally {
    await browser.close();
    await plain.close();
    await isolated.close();
  }
  const v = await browserVersion();
  process.stdout.write(
    `\n${v} headless (software GL/WebGPU: SwiftShader), ${os.cpus().length} cores, batch 1, 224x224, median of ${runs} after one warm-up\n\n`,
  );
  process.stdout.write('| model | backend | ms/img (median) | fastest | ÷ Node wasm |\n|---|---|---|---|---|\n');
  for (const r of rows) {
    const name = `${r.backend}${r.threads && r.backend.includes('wasm') ? ` (${r.threads} thread${r.threads > 1 ? 's' : ''})` : ''}`;
    process.stdout.write(
      `| ${r.arch} | ${name} | ${r.ms === null ? r.error : r.ms.toFixed(0)} | ${r.min === null || r.min === undefined ? '' : r.min.toFixed(0)} | ${r.ratio === null ? '' : r.ratio.toFixed(2)} |\n`,
    );
  }
}

async function browserVersion() {
  const b = await launchBrowser();
  try {
    return await b.version();
  } finally {
    await b.close();
  }
}

main().catch((e) => {
  console.error(`bench:browser: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
