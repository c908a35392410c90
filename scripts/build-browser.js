#!/usr/bin/env node
/**
 * `npm run build:browser`: the browser build, into dist/browser/ (serve that folder with any static
 * server):
 *
 *   convnext-tfjs.js (+ chunk-*.js)   ES module of the library (src/browser/index.ts), esbuild
 *   index.html, demo.js               the demo page (examples/browser/), importing ./convnext-tfjs.js
 *   tfjs-backend-wasm*.wasm           tfjs-backend-wasm's binaries (plain, SIMD, threaded SIMD)
 *
 * Our SIMD kernels (dist/src/backend/wasm_simd/*.wasm from scripts/build-wasm.js) are embedded in the
 * bundle. Node built-ins: `fs`, `path`, `os`, `zlib` resolve to src/browser/node/ (an in-memory file
 * table for the converter, POSIX paths, byte order, pre-inflated entries), `crypto` and
 * `worker_threads` to stubs that throw; any other Node built-in on the browser path fails the build
 * (platform 'browser'). `X.browser.ts` beside `X.ts` replaces it (decode, SIMD binaries, labels).
 */
'use strict';
const fs = require('fs');
const path = require('path');
const esbuild = require('esbuild');

const root = path.join(__dirname, '..');
const out = path.join(root, 'dist', 'browser');
const simdDir = path.join(root, 'dist', 'src', 'backend', 'wasm_simd');
const wasmDist = path.join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
const nodeShims = path.join(root, 'src', 'browser', 'node');

const ALIASES = {
  fs: 'fs.ts',
  path: 'path.ts',
  os: 'os.ts',
  zlib: 'zlib.ts',
  crypto: 'unavailable.ts',
  worker_threads: 'unavailable.ts',
};

/** `X.browser.ts` beside `X.ts` replaces it in this build. */
const browserVariants = {
  name: 'browser-variants',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (!args.importer.startsWith(root) || args.importer.includes('node_modules')) return undefined;
      const base = path.resolve(args.resolveDir, args.path).replace(/\.(ts|js)$/, '');
      const variant = `${base}.browser.ts`;
      if (variant !== args.importer && fs.existsSync(variant)) return { path: variant };
      return undefined;
    });
  },
};

/** Node built-ins -> src/browser/node/*, for the library's own files and the packages alike. */
const nodeBuiltins = {
  name: 'node-builtins',
  setup(build) {
    build.onResolve({ filter: /^(node:)?(fs|path|os|zlib|crypto|worker_threads)$/ }, (args) => {
      // Packages that map a built-in to false in their `browser` field (tfjs) keep that.
      if (args.importer.includes('node_modules')) return undefined;
      return { path: path.join(nodeShims, ALIASES[args.path.replace(/^node:/, '')]) };
    });
  },
};

/** 'convnext-tfjs:simd-binaries': our assembled kernels, base64 in the bundle. */
const simdBinaries = {
  name: 'simd-binaries',
  setup(build) {
    build.onResolve({ filter: /^convnext-tfjs:simd-binaries$/ }, () => ({ path: 'simd-binaries', namespace: 'convnext-simd' }));
    build.onLoad({ filter: /.*/, namespace: 'convnext-simd' }, () => {
      const files = fs.existsSync(simdDir)
        ? fs
            .readdirSync(simdDir)
            .filter((f) => f.endsWith('.wasm'))
            .sort()
        : [];
      if (files.length === 0) throw new Error(`no SIMD kernels in ${simdDir}: run node scripts/build-wasm.js first`);
      const entries = files.map((f) => `  ${JSON.stringify(f)}: b(${JSON.stringify(fs.readFileSync(path.join(simdDir, f)).toString('base64'))}),`);
      return {
        contents: `const b = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));\nexport const SIMD_BINARIES = {\n${entries.join('\n')}\n};\n`,
        loader: 'js',
      };
    });
  },
};

/** The demo imports the library as a user page would: the module beside it. */
const demoImportsBundle = {
  name: 'demo-imports-bundle',
  setup(build) {
    build.onResolve({ filter: /^convnext-tfjs$/ }, () => ({ path: './convnext-tfjs.js', external: true }));
  },
};

const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16.4'],
  sourcemap: true,
  minify: true,
  logLevel: 'warning',
  legalComments: 'linked',
  define: { 'process.env.NODE_ENV': '"production"' },
};

async function main() {
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const lib = await esbuild.build({
    ...common,
    entryPoints: { 'convnext-tfjs': path.join(root, 'src', 'browser', 'bundle.ts') },
    outdir: out,
    splitting: true,
    chunkNames: 'chunk-[hash]',
    inject: [path.join(nodeShims, 'buffer_global.ts')],
    plugins: [browserVariants, nodeBuiltins, simdBinaries],
    metafile: true,
  });
  // The guard: none of the library's Node-only modules may reach the bundle.
  const nodeOnly = [
    'src/data/decode.ts',
    'src/backend/index.ts',
    'src/backend/wasm_threads.ts',
    'src/backend/relaxed_simd.ts',
    'src/backend/wasm_simd/pool',
    'src/parallel/',
    'src/zoo/cache.ts',
    'src/zoo/download.ts',
    'src/factory/load.ts',
  ];
  const inputs = Object.keys(lib.metafile.inputs);
  const leaked = inputs.filter((i) => nodeOnly.some((n) => i.startsWith(n)));
  if (leaked.length) throw new Error(`Node-only modules in the browser bundle: ${leaked.join(', ')}`);
  await esbuild.build({
    ...common,
    entryPoints: { demo: path.join(root, 'examples', 'browser', 'main.ts') },
    outdir: out,
    plugins: [demoImportsBundle],
  });
  for (const f of fs.readdirSync(wasmDist).filter((f) => f.endsWith('.wasm'))) fs.copyFileSync(path.join(wasmDist, f), path.join(out, f));
  for (const f of ['index.html']) fs.copyFileSync(path.join(root, 'examples', 'browser', f), path.join(out, f));
  const size = (f) => (fs.statSync(path.join(out, f)).size / 1024).toFixed(0);
  const js = fs.readdirSync(out).filter((f) => f.endsWith('.js'));
  process.stdout.write(`build-browser: ${out}: ${js.map((f) => `${f} ${size(f)} KiB`).join(', ')}\n`);
}

main().catch((e) => {
  console.error(`build-browser: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
