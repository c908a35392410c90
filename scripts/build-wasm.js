#!/usr/bin/env node
/**
 * Assembles our WebAssembly SIMD kernels: src/backend/wasm_simd/*.wat -> dist/src/backend/wasm_simd/*.wasm.
 * Each kernel gets two binaries, identical but for the memory they import: `<name>.wasm` (plain
 * memory: tfjs-backend-wasm's single-threaded builds) and `<name>.shared.wasm` (shared memory: its
 * threaded build). A kernel with a `;; fma variant` line also gets `<name>[.shared].fma.wasm`: the same
 * text with its multiply-adds fused (scripts/wat-fma.js; relaxed SIMD), which the runtime picks where
 * the engine validates relaxed SIMD (src/backend/wasm_simd/fma.ts). Runs at build time only
 * (devDependency wabt); the package ships the .wasm files.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { fuseMultiplyAdds } = require('./wat-fma');

const root = path.join(__dirname, '..');
const srcDir = path.join(root, 'src', 'backend', 'wasm_simd');
const outDir = path.join(root, 'dist', 'src', 'backend', 'wasm_simd');
const PLAIN = '(import "env" "memory" (memory 1))';
// The threaded build's memory: shared, at most 4 GiB (65536 pages).
const SHARED = '(import "env" "memory" (memory 1 65536 shared))';
// A kernel's opt-in to a fused multiply-add variant.
const FMA_MARK = /^;; fma variant\b/m;
const FEATURES = { simd: true, threads: true, relaxed_simd: true };

/** Assembles `source` to `out` (written to a temp file and renamed). */
function assemble(wabt, file, source, out) {
  const mod = wabt.parseWat(file, source, FEATURES);
  try {
    mod.validate(FEATURES);
    const { buffer } = mod.toBinary({});
    const tmp = `${out}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, buffer);
    fs.renameSync(tmp, out);
  } finally {
    mod.destroy();
  }
}

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
    const variants = [['', text]];
    if (FMA_MARK.test(text)) {
      const fused = fuseMultiplyAdds(text);
      if (fused.count === 0) throw new Error(`${file}: marked for an fma variant but has no (f32x4.add X (f32x4.mul Y Z))`);
      variants.push(['.fma', fused.text]);
    }
    for (const [fma, source] of variants) {
      assemble(wabt, file, source, path.join(outDir, `${name}${fma}.wasm`));
      assemble(wabt, file, source.replace(PLAIN, SHARED), path.join(outDir, `${name}.shared${fma}.wasm`));
    }
  }
}

main().catch((e) => {
  console.error(`build-wasm: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
