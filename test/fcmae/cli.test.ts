/** `convnext reconstruct` and `convnext pretrain` as a user runs them (wasm): numbers, files, one-line errors. */
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { readNpyFloat32, writeNpy } from '../../src/io/npy';
import { readSafetensors } from '../../weights-converter/safetensors';
import { encodePng } from '../../src/data/png';
import { expectUserError, maxAbs, runCli, useTmpDir } from '../helpers';

const ROOT = path.resolve(__dirname, '../../..');
const FIX = path.join(ROOT, 'test/fixtures/fcmae');

const run = runCli;
/** `convnext reconstruct` of the fixture's input with its FB2-layout (MinkowskiEngine names) checkpoint. */
const reconstructFixture = (...args: string[]) => run('reconstruct', path.join(FIX, 'input.npy'), '--model', path.join(FIX, 'fcmae_minkowski.pth'), ...args);

describe('convnext reconstruct / pretrain CLI', function () {
  this.timeout(300_000);
  const tmp = useTmpDir('fcmae-cli-');

  it('reconstruct x.npy with a fixed mask on the FB2-layout fixture gives the PyTorch loss and prediction', () => {
    const meta = JSON.parse(fs.readFileSync(path.join(FIX, 'meta.json'), 'utf8'));
    const pred = tmp('pred.npy');
    const grid = tmp('grid.png');
    const r = reconstructFixture('--mask', path.join(FIX, 'mask.npy'), '--pred', pred, '--output', grid, '--json');
    expect(r.code, r.stderr).to.equal(0);
    const j = JSON.parse(r.stdout);
    expect(j).to.include({ n: 2, patches: 4, masked: 5 });
    expect(Math.abs(j.loss - meta.losses.image[0]) / meta.losses.image[0]).to.be.below(1e-5);
    const p = readNpyFloat32(pred);
    expect(p.shape).to.deep.equal([2, 4, 3072]);
    const ref = readSafetensors(path.join(FIX, 'out_image.safetensors')).tensors.get('pred')!.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(p.data[i] - ref[i]));
    expect(worst).to.be.at.most(1e-4 * Math.max(1, maxAbs(ref)));
    expect(fs.readFileSync(grid).subarray(1, 4).toString()).to.equal('PNG');
    const b = reconstructFixture('--mask', path.join(FIX, 'mask.npy'), '--grn-stats', 'batch', '--json');
    expect(Math.abs(JSON.parse(b.stdout).loss - meta.losses.batch[0]) / meta.losses.batch[0]).to.be.below(1e-5);
  });

  it('reconstruct errors are one line naming the problem', () => {
    const bad = tmp('bad_mask.npy');
    writeNpy(bad, { shape: [2, 9], data: new Float32Array(18) });
    expectUserError(reconstructFixture('--mask', bad), /mask must be \[2, 4\]/);
    expectUserError(run('reconstruct', path.join(FIX, 'input.npy'), '--model', tmp('nope')), /no such file/);
    expectUserError(reconstructFixture('--grn-stats', 'pooled'), /'image'/);
    expectUserError(run('reconstruct', path.join(FIX, 'input.npy'), '--model', path.join(FIX, 'pt_only.pth')), /encoder-only FCMAE file/);
  });

  it('pretrain convnextv2_atto for an epoch: log, grid, encoder dir (embed accepts it), fcmae.pth (reconstruct accepts it)', () => {
    const data = tmp('imgs');
    fs.mkdirSync(path.join(data, 'x'), { recursive: true });
    for (let i = 0; i < 4; i++) {
      const d = new Uint8Array(70 * 64 * 3).map((_, j) => (j * (i + 3)) % 251);
      fs.writeFileSync(path.join(data, i % 2 ? 'x' : '', `p${i}.png`), encodePng({ width: 70, height: 64, data: d }));
    }
    const out = tmp('run');
    const r = run('pretrain', '--data', data, '--image-size', '64', '--batch-size', '2', '--epochs', '1', '--decoder-dim', '64', '--out', out, '--json');
    expect(r.code, r.stderr).to.equal(0);
    const j = JSON.parse(r.stdout);
    expect(Number.isFinite(j.loss)).to.equal(true);
    expect(fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n')).to.have.length(1);
    expect(fs.existsSync(path.join(out, 'reconstruction-e001.png'))).to.equal(true);
    const e = run('embed', path.join(data, 'p0.png'), '--model', path.join(out, 'encoder'), '--output', tmp('e.npy'));
    expect(e.code, e.stderr).to.equal(0);
    expect(readNpyFloat32(tmp('e.npy')).shape).to.deep.equal([1, 320]);
    const x = run('reconstruct', path.join(data, 'p0.png'), '--image-size', '64', '--model', path.join(out, 'fcmae.pth'), '--json');
    expect(x.code, x.stderr).to.equal(0);
    const y = run('reconstruct', path.join(data, 'p0.png'), '--image-size', '64', '--model', out, '--json');
    expect(JSON.parse(y.stdout).loss).to.be.closeTo(JSON.parse(x.stdout).loss, 1e-4 * JSON.parse(x.stdout).loss);
    // export: the run's encoder in a PyTorch layout (the run dir stands for its encoder/), the whole FCMAE in FB2's layout
    const t = run('export', out, tmp('enc.safetensors'), '--layout', 'timm', '--json');
    expect(t.code, t.stderr).to.equal(0);
    expect(JSON.parse(t.stdout).num_classes).to.equal(0);
    const fx = run('export', out, tmp('full.pth'), '--layout', 'fcmae', '--json');
    expect(fx.code, fx.stderr).to.equal(0);
    const z = run('reconstruct', path.join(data, 'p0.png'), '--image-size', '64', '--model', tmp('full.pth'), '--json');
    expect(JSON.parse(z.stdout).loss).to.be.closeTo(JSON.parse(x.stdout).loss, 1e-4 * JSON.parse(x.stdout).loss);
    expectUserError(run('pretrain', '--data', data, '--image-size', '48', '--out', tmp('r2')), /divisible by 32/);
  });
});
