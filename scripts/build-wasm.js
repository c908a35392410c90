#!/usr/bin/env node
/**
 * Assembles our WebAssembly SIMD kernels: src/backend/wasm_simd/*.wat -> dist/src/backend/wasm_simd/*.wasm.
 * Each kernel gets two binaries, identical but for the memory they import: `<name>.wasm` (plain
 * memory: tfjs-backend-wasm's single-threaded builds) and `<name>.shared.wasm` (shared memory: its
 * threaded build). Runs at build time only (devDependency wabt); the package ships the .wasm files.
 */
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const srcDir = path.join(root, 'src', 'backend', 'wasm_simd');
const outDir = path.join(root, 'dist', 'src', 'backend', 'wasm_simd');
const PLAIN = '(import "env" "memory" (memory 1))';
// The threaded build's memory: shared, at most 4 GiB (65536 pages).
const SHARED = '(import "env" "memory" (memory 1 65536 shared))';

async function main() {
  const wabt = await require('wabt')();
  fs.mkdirSync(outDir, { recursive: true });
  for (const file of fs
    .readdirSync(srcDir)
    .filter((f) => f.endsWith('.wat'))
    .sort()) {
    const text = fs.readFileSync(path.join(srcDir, file), 'utf8');
    if (!text.includes(PLAIN)) throw new Error(`${file}: must import its memory as ${PLAIN}`);
    const name = file.replace(/\.wat$/, '');
    for (const [suffix, source] of [
      ['', text],
      ['.shared', text.replace(PLAIN, SHARED)],
    ]) {
      const mod = wabt.parseWat(file, source, { simd: true, threads: true });
      try {
        mod.validate({ simd: true, threads: true });
        const { buffer } = mod.toBinary({});
        const out = path.join(outDir, `${name}${suffix}.wasm`);
        const tmp = `${out}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, buffer);
        fs.renameSync(tmp, out);
      } finally {
        mod.destroy();
      }
    }
  }
}

main().catch((e) => {
  console.error(`build-wasm: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
