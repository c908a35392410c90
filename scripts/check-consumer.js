#!/usr/bin/env node
/**
 * Checks the package as a TypeScript consumer gets it: `npm pack`s it (after `npm run build`),
 * installs the tarball into a temporary app (its dependencies linked from this checkout's
 * node_modules, so nothing is downloaded), compiles test/consumer/app.ts with tsc --strict and
 * skipLibCheck off, and runs it. Prints one JSON line; exit 1 on any failure.
 *
 * --registry: a fresh user's install instead (`npm install <tarball>`, dependencies from the npm
 * registry); reports its size (installKiB, packages) and runs test/consumer/umbrella.js, without
 * the tsc step. --umbrella: the same with `@tensorflow/tfjs` at our tfjs-core's version installed
 * beside it: the app must get one tfjs-core and one engine.
 * Usage: node scripts/check-consumer.js [--keep] [--registry | --umbrella]
 */
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-consumer-'));
const keep = process.argv.includes('--keep');
const umbrella = process.argv.includes('--umbrella');
const registry = umbrella || process.argv.includes('--registry');

function fail(step, out) {
  process.stdout.write(JSON.stringify({ ok: false, step, dir: tmp, output: String(out).slice(-4000) }) + '\n');
  if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(1);
}

// 1. The tarball npm would publish (scripts off: the build is already in dist/).
const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: root, encoding: 'utf8' });
if (packed.status !== 0) fail('npm pack', packed.stderr);
const tarball = path.join(tmp, JSON.parse(packed.stdout)[0].filename);

const nm = path.join(tmp, 'node_modules');
if (registry) {
  // 2'. As a user installs it (scripts of dependencies off, as `npm ci` here runs them).
  const core = JSON.parse(fs.readFileSync(path.join(root, 'node_modules/@tensorflow/tfjs-core/package.json'), 'utf8')).version;
  fs.writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
  const pkgs = [tarball, ...(umbrella ? [`@tensorflow/tfjs@${core}`] : [])];
  const inst = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', ...pkgs], { cwd: tmp, encoding: 'utf8' });
  if (inst.status !== 0) fail('npm install', inst.stderr);
  const installKiB = Number(execFileSync('du', ['-sk', nm], { encoding: 'utf8' }).split('\t')[0]);
  const packages = execFileSync('npm', ['ls', '--all', '--parseable'], { cwd: tmp, encoding: 'utf8' }).trim().split('\n').length - 1;
  fs.copyFileSync(path.join(root, 'test/consumer/umbrella.js'), path.join(tmp, 'umbrella.js'));
  const run = spawnSync(process.execPath, [path.join(tmp, 'umbrella.js')], { cwd: tmp, encoding: 'utf8' });
  if (run.status !== 0) fail('umbrella.js', run.stderr);
  const result = JSON.parse(run.stdout.trim().split('\n').pop());
  if (!result.ok) fail('umbrella.js', run.stdout);
  process.stdout.write(
    JSON.stringify({ ok: true, tarball: path.basename(tarball), tarballKiB: Math.round(fs.statSync(tarball).size / 1024), installKiB, packages, result }) +
      '\n',
  );
  if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(0);
}

// 2. node_modules/convnext-tfjs from the tarball; every other package linked from this checkout.
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
