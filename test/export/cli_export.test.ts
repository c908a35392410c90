/** `convnext export` refusals: one line naming the problem, exit 1, no stack trace; nothing written. */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { useTmpDir } from '../helpers';

const ROOT = path.join(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'convnext.js');
const V2 = path.join(ROOT, 'test/fixtures/parity/v2_official/convnextv2_test_1k_224_ema.pt');

function run(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, CONVNEXT_BACKEND: 'wasm' } });
}

describe('convnext export (CLI errors)', function () {
  this.timeout(60_000);
  const tmp = useTmpDir('convnext-export-cli-');

  it('refuses V2 -> torchvision, a missing output directory and a missing model, each in one line', () => {
    const tv = run('export', V2, tmp('v2.pth'), '--layout', 'torchvision');
    expect(tv.status).to.equal(1);
    expect(tv.stderr.trim().split('\n')).to.have.length(1);
    expect(tv.stderr).to.match(/torchvision's ConvNeXt is V1 only/);
    const nodir = run('export', V2, tmp('no', 'such', 'v2.pth'), '--layout', 'official');
    expect(nodir.status).to.equal(1);
    expect(nodir.stderr).to.match(/output directory .*no\/such does not exist/);
    const nomodel = run('export', tmp('missing.pth'), tmp('x.pth'), '--layout', 'official');
    expect(nomodel.status).to.equal(1);
    expect(nomodel.stderr).to.match(/missing\.pth: no such file or directory/);
    expect(fs.readdirSync(tmp())).to.deep.equal([]);
  });

  it('requires --layout and names the choices', () => {
    const r = run('export', V2, tmp('v2.pth'));
    expect(r.status).to.not.equal(0);
    expect(r.stderr).to.match(/--layout/);
    const bad = run('export', V2, tmp('v2.pth'), '--layout', 'keras');
    expect(bad.status).to.not.equal(0);
    expect(bad.stderr).to.match(/official, timm, torchvision, hf/);
  });
});
