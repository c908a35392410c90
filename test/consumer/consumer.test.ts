/**
 * Our published types and entry points as a TypeScript app sees them (issue 14): the `npm pack`
 * tarball compiles under tsc --strict without skipLibCheck and runs (scripts/check-consumer.js).
 * Before the fix, our .d.ts imported '@tensorflow/tfjs' and tsc failed inside tfjs-layers' types.
 * `node scripts/check-consumer.js --registry` (a fresh install's size) and `--umbrella` (an app that
 * also installs @tensorflow/tfjs gets one tfjs-core and one engine) need the npm registry: run by hand.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';

const ROOT = path.resolve(__dirname, '../../..');

describe('consumer project (npm pack + tsc --strict, no skipLibCheck)', function () {
  this.timeout(300_000);

  it('the packed package compiles in a strict app and runs; LICENSE ships with it', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/check-consumer.js')], { encoding: 'utf8' });
    const line = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
    expect(line.ok, r.stdout + r.stderr).to.equal(true);
    expect(line.result.shape).to.deep.equal([1, 3]);
    expect(line.result.grad, 'a gradient in the app, with no @tensorflow/tfjs installed').to.deep.equal([2, 4]);
    expect(line.packageFiles).to.include('LICENSE');
  });

  it('no published .d.ts pulls in the @tensorflow/tfjs umbrella (its layers types fail strict checks)', () => {
    const offenders: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.d.ts') && /(from|import)\s+'@tensorflow\/tfjs'/.test(fs.readFileSync(p, 'utf8'))) offenders.push(path.relative(ROOT, p));
      }
    };
    walk(path.join(ROOT, 'dist/src'));
    walk(path.join(ROOT, 'dist/weights-converter'));
    expect(offenders).to.deep.equal([]);
  });

  it('the package depends on tfjs-core and its backends, not the @tensorflow/tfjs umbrella, at one tfjs version', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const tfjs = Object.entries(pkg.dependencies).filter(([name]) => name.startsWith('@tensorflow/'));
    expect(tfjs.map(([name]) => name).sort()).to.deep.equal(['@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-core']);
    // Exact, as the tfjs packages pin each other: an app's @tensorflow/tfjs of that version dedupes to one tfjs-core.
    expect(new Set(tfjs.map(([, range]) => range)).size).to.equal(1);
    expect(tfjs[0][1]).to.match(/^\d+\.\d+\.\d+$/);
  });

  it('LICENSE is the full Apache-2.0 text, as package.json says', () => {
    const text = fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8');
    expect(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).license).to.equal('Apache-2.0');
    expect(text).to.match(/^\s*Apache License\s+Version 2\.0, January 2004/);
    expect(text).to.include('END OF TERMS AND CONDITIONS');
    expect(text.split('\n').length).to.be.above(190);
  });
});
