#!/usr/bin/env node
/**
 * Checks that imports between folders point one way (lower rooms never import higher ones) and that
 * no folders import each other in a cycle. The order below is the architecture; a new folder must be
 * placed in it. Usage: node scripts/check-layers.js [--graph]   (exit 1 on a violation)
 */
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
// Lowest first. Rooms on one line may not import each other.
const ORDER = [
  ['src/errors.ts', 'src/env.ts', 'src/kernel_names.ts', 'src/util'],
  ['src/layers'],
  ['src/backend', 'src/blocks'],
  ['src/model'],
  ['weights-converter'],
  ['src/io'],
  ['src/zoo'],
  ['src/factory'],
  ['src/data'],
  ['src/parallel'],
  ['src/inference'],
  ['src/train'],
  ['src/perf', 'src/fcmae'],
  ['src/cli', 'src/browser'],
  ['src/index.ts'],
];
const rank = new Map();
ORDER.forEach((rooms, i) => rooms.forEach((r) => rank.set(r, i)));

function roomOf(file) {
  const rel = path.relative(root, file).split(path.sep).join('/');
  for (const r of [...rank.keys()].sort((a, b) => b.length - a.length)) if (rel === r || rel.startsWith(r + '/')) return r;
  return null;
}

function resolve(from, spec) {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [base + '.ts', path.join(base, 'index.ts'), base]) if (fs.existsSync(c) && fs.statSync(c).isFile()) return c;
  return null;
}

function* sources(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* sources(p);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) yield p;
  }
}

const edges = new Map();
const problems = [];
for (const top of ['src', 'weights-converter']) {
  for (const file of sources(path.join(root, top))) {
    const from = roomOf(file);
    if (from === null) {
      problems.push(`${path.relative(root, file)}: its folder is not in the layer order (scripts/check-layers.js)`);
      continue;
    }
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import\(|require\(|^import)\s*['"](\.{1,2}\/[^'"]+)['"]/gm)) {
      const target = resolve(file, m[1]);
      if (target === null) continue;
      const to = roomOf(target);
      if (to === null || to === from) continue;
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from).add(to);
      if (rank.get(to) >= rank.get(from)) {
        problems.push(`${path.relative(root, file)} (${from}) imports ${m[1]} (${to}): ${to} is not below ${from}`);
      }
    }
  }
}
if (process.argv.includes('--graph')) {
  for (const [a, bs] of [...edges].sort((x, y) => rank.get(x[0]) - rank.get(y[0]))) console.log(`${a} -> ${[...bs].sort().join(', ')}`);
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`layers ok: ${edges.size} rooms, ${[...edges.values()].reduce((n, s) => n + s.size, 0)} folder-to-folder imports, all pointing down`);
