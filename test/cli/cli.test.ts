/** The `convnext` CLI as a user runs it: exit codes, stdout JSON, one-line errors, no stack traces. */
import * as fs from 'fs';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { expect } from 'chai';
import { readNpyFloat32, writeNpy } from '../../src/io/npy';
import { BIN, expectUserError, maxAbsDiff, runCli, useTmpDir } from '../helpers';

const ROOT = path.resolve(__dirname, '../../..');
const PARITY = path.join(ROOT, 'test/fixtures/parity');

const run = runCli;

describe('convnext CLI', function () {
  this.timeout(120_000);
  const tmp = useTmpDir('convnext-cli-');

  it('--help lists the commands', () => {
    const r = run('--help');
    expect(r.code).to.equal(0);
    for (const cmd of ['info', 'convert', 'forward']) expect(r.stdout).to.match(new RegExp(`\\n\\s+${cmd} `));
  });

  it('info --json prints one object with the official parameter count', () => {
    const r = run('info', 'convnext_tiny', '--json');
    expect(r.code).to.equal(0);
    const j = JSON.parse(r.stdout);
    expect(j).to.include({ name: 'convnext_tiny', params: 28_589_128, version: 1 });
    expect(j.depths).to.deep.equal([3, 3, 9, 3]);
    expect(j.dims).to.deep.equal([96, 192, 384, 768]);
    expect(j.gmacs_224).to.be.closeTo(4.46, 0.01);
    expect(JSON.parse(run('info', 'convnextv2_atto', '--json').stdout).params).to.equal(3_708_400);
  });

  it('bad names, commands and flags exit non-zero with one clear line', () => {
    expectUserError(run('info', 'convnext_tinny'), /^error: unknown model 'convnext_tinny' \(did you mean convnext_tiny/);
    expect(run('frobnicate').code).to.equal(1);
    expect(run('frobnicate').stderr).to.match(/unknown command 'frobnicate'/);
    expect(run('convert', 'only-one-arg').stderr).to.match(/missing required argument 'out-dir'/);
    expectUserError(run('--backend', 'quantum', 'forward', '--model', 'x', '--input', 'y', '--output', 'z'), /unknown backend 'quantum'/);
    const threads = run('--threads', 'many', 'info', 'convnext_tiny');
    expect(threads.code).to.equal(1);
    expect(threads.stderr).to.match(/option '--threads <n>' argument 'many' is invalid. must be 'auto' or a positive integer/);
    expect(run('predict', 'x.png', '--model', 'm', '--workers', '0').stderr).to.match(/'--workers <n>' argument '0' is invalid/);
    const env = spawnSync(process.execPath, [BIN, 'forward', '--model', 'x', '--input', 'y', '--output', 'z'], {
      encoding: 'utf8',
      env: { ...process.env, CONVNEXT_BACKEND: 'wasm', CONVNEXT_THREADS: '9' },
    });
    expect(env.status).to.equal(1);
    expect(env.stderr).to.match(/^error: \$CONVNEXT_THREADS must be 'auto' or an integer from 1 to 8, got '9'/);
  });

  it('convert + forward reproduce PyTorch logits and pre-logits (v2 official fixture)', () => {
    const c = path.join(PARITY, 'v2_official');
    const out = tmp('v2');
    const conv = run('convert', path.join(c, 'convnextv2_test_1k_224_ema.pt'), out, '--json');
    expect(conv.code, conv.stderr).to.equal(0);
    expect(JSON.parse(conv.stdout)).to.include({ version: 2, num_classes: 10, layout: 'official', format: 'torch-zip' });
    for (const [flag, ref] of [
      [[], 'logits.npy'],
      [['--features'], 'prelogits.npy'],
    ] as const) {
      const o = tmp(`out-${ref}`);
      const f = run('forward', '--model', out, '--input', path.join(c, 'input.npy'), '--output', o, ...flag);
      expect(f.code, f.stderr).to.equal(0);
      const ours = readNpyFloat32(o);
      const theirs = readNpyFloat32(path.join(c, ref));
      expect(ours.shape).to.deep.equal(theirs.shape);
      expect(maxAbsDiff(ours.data, theirs.data)).to.be.below(1e-4);
    }
  });

  it('hostile and broken inputs: clear error, exit 1, nothing written', () => {
    const evil = path.join(ROOT, 'test/fixtures/checkpoints/evil_os_system.pth');
    const out = tmp('evil-out');
    expectUserError(run('convert', evil, out), /refusing to load global '(posix|os)\.system'/);
    expect(fs.existsSync(path.join(out, 'model.json'))).to.equal(false);
    const junk = tmp('junk.pth');
    fs.writeFileSync(junk, Buffer.from('definitely not a checkpoint, just some text bytes'));
    expectUserError(run('convert', junk, out), /checkpoint .*junk\.pth: .*unrecognized format/);
    expectUserError(run('convert', tmp('absent.pth'), out), /absent\.pth/);
    // forward: wrong input layout, missing model
    const nhwc = tmp('nhwc.npy');
    writeNpy(nhwc, { shape: [1, 32, 32, 3], data: new Float32Array(32 * 32 * 3) });
    expectUserError(
      run('forward', '--model', tmp('v2'), '--input', nhwc, '--output', tmp('o.npy')),
      /expected float32 NCHW \[N, 3, H, W\], got shape \[1, 32, 32, 3\]/,
    );
    const nchw = tmp('nchw.npy');
    writeNpy(nchw, { shape: [1, 3, 32, 32], data: new Float32Array(32 * 32 * 3) });
    expectUserError(run('forward', '--model', tmp('nowhere'), '--input', nchw, '--output', tmp('o.npy')), /model .*nowhere: no such file or directory/);
    expectUserError(run('forward', '--model', tmp('v2'), '--input', junk, '--output', tmp('o.npy')), /junk\.pth/);
    expect(fs.existsSync(tmp('o.npy'))).to.equal(false);
  });
});
