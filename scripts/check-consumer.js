#!/usr/bin/env node
/**
 * Checks the package as a TypeScript consumer gets it: `npm pack`s it (after `npm run build`),
 * installs the tarball into a temporary app (its dependencies linked from this checkout's
 * node_modules, so nothing is downloaded), compiles test/consumer/app.ts with tsc --strict and
 * skipLibCheck off, and runs it. Prints one JSON line; exit 1 on any failure.
 * Usage: node scripts/check-consumer.js [--keep]
 */
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-consumer-'));
const keep = process.argv.includes('--keep');

function fail(step, out) {
  process.stdout.write(JSON.stringify({ ok: false, step, dir: tmp, output: String(out).slice(-4000) }) + '\n');
  if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(1);
}

// 1. The tarball npm would publish (scripts off: the build is already in dist/).
const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: root, encoding: 'utf8' });
if (packed.status !== 0) fail('npm pack', packed.stderr);
const tarball = path.join(tmp, JSON.parse(packed.stdout)[0].filename);

// 2. node_modules/convnext-tfjs from the tarball; every other package linked from this checkout.
const nm = path.join(tmp, 'node_modules');
fs.mkdirSync(nm);
execFileSync('tar', ['-xzf', tarball, '-C', tmp]);
fs.renameSync(path.join(tmp, 'package'), path.join(nm, 'convnext-tfjs'));
for (const name of fs.readdirSync(path.join(root, 'node_modules'))) {
  if (name.startsWith('.') || name === 'convnext-tfjs') continue;
  fs.symlinkSync(path.join(root, 'node_modules', name), path.join(nm, name));
}
for (const f of ['tsconfig.json', 'app.ts']) fs.copyFileSync(path.join(root, 'test/consumer', f), path.join(tmp, f));

// 3. Compile as a strict consumer would, then run.
const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', tmp], { encoding: 'utf8' });
if (tsc.status !== 0) fail('tsc --strict (no skipLibCheck)', tsc.stdout + tsc.stderr);
const run = spawnSync(process.execPath, [path.join(tmp, 'out/app.js')], { cwd: tmp, encoding: 'utf8', env: { ...process.env, CONVNEXT_BACKEND: 'cpu' } });
if (run.status !== 0) fail('run', run.stderr);
const result = JSON.parse(run.stdout.trim().split('\n').pop());
if (!result.ok) fail('run', run.stdout);
const files = fs.readdirSync(path.join(nm, 'convnext-tfjs'));
process.stdout.write(JSON.stringify({ ok: true, tarball: path.basename(tarball), packageFiles: files, result }) + '\n');
if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
