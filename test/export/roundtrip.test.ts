/**
 * Export round trips: every committed parity fixture (V1 and V2, PyTorch-written checkpoints in
 * all four layouts) converted, exported to every layout, and converted back gives bit-identical
 * weights; exporting to the fixture's own layout reproduces its keys and shapes exactly.
 */
import * as fs from 'fs';
import * as path from 'path';
import { expect } from 'chai';
import { convertCheckpoint } from '../../weights-converter/convert';
import { exportWeights, EXPORT_EXTENSIONS } from '../../weights-converter/export';
import { expandPattern, exportKeyMap } from '../../weights-converter/export_layouts';
import { LAYOUTS, Layout } from '../../weights-converter/layouts';
import { readCheckpoint } from '../../weights-converter/read';
import { decodeFloat16, encodeFloat16 } from '../../weights-converter/dtype';
import { useTmpDir } from '../helpers';

const FIXTURES = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'parity');

interface FixtureMeta {
  layout: Layout;
  version: 1 | 2;
  checkpoint: string;
  conv_mlp: boolean;
  weights_dtype: string;
}

const cases = fs.readdirSync(FIXTURES).filter((d) => fs.existsSync(path.join(FIXTURES, d, 'meta.json')));

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

describe('export: rename rules run backwards', () => {
  it('expands a rule pattern into exactly the keys it matches', () => {
    const keys = expandPattern(/^features\.([246])\.0\.(weight|bias)$/, 3);
    expect(keys).to.deep.equal([
      'features.2.0.weight',
      'features.2.0.bias',
      'features.4.0.weight',
      'features.4.0.bias',
      'features.6.0.weight',
      'features.6.0.bias',
    ]);
    expect(expandPattern(/^stages\.(\d)\.(\d+)\.gamma$/, 2)).to.have.length(30);
    expect(expandPattern(/^(?:convnext(?:v2)?\.)?layernorm\.(weight|bias)$/, 0)).to.have.members([
      'layernorm.weight',
      'layernorm.bias',
      'convnext.layernorm.weight',
      'convnext.layernorm.bias',
      'convnextv2.layernorm.weight',
      'convnextv2.layernorm.bias',
    ]);
  });

  it('picks the HF prefix of the version and names what a layout lacks', () => {
    const m1 = exportKeyMap('hf', ['stem.conv.weight', 'head.fc.bias', 'stages.2.blocks.11.gamma'], 1);
    expect([...m1.values()]).to.deep.equal([
      'convnext.embeddings.patch_embeddings.weight',
      'classifier.bias',
      'convnext.encoder.stages.2.layers.11.layer_scale_parameter',
    ]);
    const m2 = exportKeyMap('hf', ['stages.0.blocks.0.mlp.grn.weight'], 2);
    expect([...m2.values()]).to.deep.equal(['convnextv2.encoder.stages.0.layers.0.grn.weight']);
    expect(exportKeyMap('torchvision', ['stages.3.blocks.26.mlp.fc2.weight'], 1).get('stages.3.blocks.26.mlp.fc2.weight')).to.equal(
      'features.7.26.block.5.weight',
    );
    expect(() => exportKeyMap('torchvision', ['stages.0.blocks.0.mlp.grn.weight'], 2)).to.throw(/no key for 1 weight.*V1 only.*grn/);
  });
});

describe('export: round trips through every layout (committed fixtures)', function () {
  this.timeout(120000);
  const tmp = useTmpDir('convnext-export-');

  it('has V1 and V2 fixtures to test', () => {
    const metas = cases.map((c) => JSON.parse(fs.readFileSync(path.join(FIXTURES, c, 'meta.json'), 'utf8')) as FixtureMeta);
    expect(metas.some((m) => m.version === 1)).to.equal(true);
    expect(metas.some((m) => m.version === 2)).to.equal(true);
  });

  for (const c of cases) {
    it(`${c}: convert -> export (each layout, fp32 and fp16) -> convert is the identity`, async () => {
      const meta = JSON.parse(fs.readFileSync(path.join(FIXTURES, c, 'meta.json'), 'utf8')) as FixtureMeta;
      const src = path.join(FIXTURES, c, meta.checkpoint);
      const first = await convertCheckpoint(src);
      for (const layout of LAYOUTS) {
        if (layout === 'torchvision' && first.config.version === 2) {
          expect(() => exportWeights(first.config, first.weights, tmp(`${c}.tv.pth`), { layout })).to.throw(/V1 only/);
          continue;
        }
        for (const fp16 of [false, true]) {
          const dir = tmp(`${c}-${layout}-${fp16 ? 'fp16' : 'fp32'}`);
          fs.mkdirSync(dir);
          const file = path.join(dir, `model${EXPORT_EXTENSIONS[layout]}`);
          const r = exportWeights(first.config, first.weights, file, { layout, fp16 });
          expect(r.files[0]).to.equal(file);
          const back = await convertCheckpoint(file);
          expect(back.meta.source?.layout).to.equal(layout);
          expect({ ...back.config, name: '', headNormEps: 0 }).to.deep.equal({ ...first.config, name: '', headNormEps: 0 });
          if (layout === 'hf') expect(back.config.headNormEps).to.equal(first.config.headNormEps);
          expect([...back.weights.keys()]).to.deep.equal([...first.weights.keys()]);
          for (const [n, w] of first.weights) {
            const b = back.weights.get(n)!;
            expect(b.shape, n).to.deep.equal(w.shape);
            const want = fp16 ? decodeFloat16(new Uint8Array(encodeFloat16(w.data).buffer)) : w.data;
            expect(bytesOf(b.data).equals(bytesOf(want)), `${layout}${fp16 ? ' fp16' : ''} ${n} differs`).to.equal(true);
          }
        }
      }
    });

    it(`${c}: export to its own layout reproduces the PyTorch file's keys and shapes`, async () => {
      const meta = JSON.parse(fs.readFileSync(path.join(FIXTURES, c, 'meta.json'), 'utf8')) as FixtureMeta;
      const src = path.join(FIXTURES, c, meta.checkpoint);
      const orig = await readCheckpoint(src);
      const first = await convertCheckpoint(src);
      const file = tmp(`${c}-own${EXPORT_EXTENSIONS[meta.layout]}`);
      exportWeights(first.config, first.weights, file, { layout: meta.layout, convMlp: meta.conv_mlp });
      const mine = await readCheckpoint(file);
      expect(mine.wrapper).to.equal(meta.layout === 'official' ? 'model' : null);
      const shapes = (m: Map<string, { shape: number[] }>) => Object.fromEntries([...m].map(([k, v]) => [k, v.shape]));
      expect(shapes(mine.tensors)).to.deep.equal(shapes(orig.tensors));
      if (meta.weights_dtype === 'float32') {
        for (const [k, t] of orig.tensors) expect(bytesOf(mine.tensors.get(k)!.data as Float32Array).equals(bytesOf(t.data as Float32Array)), k).to.equal(true);
      }
    });
  }
});

describe('export: labels travel with the file', function () {
  this.timeout(60000);
  const tmp = useTmpDir('convnext-export-labels-');
  it('timm (safetensors metadata) and hf (config.json id2label) give the labels back to convert; official/torchvision have no place for them', async () => {
    const c = await convertCheckpoint(path.join(FIXTURES, 'v1_official', 'checkpoint.pth'));
    const labels = Array.from({ length: c.config.numClasses }, (_, i) => `kind ${i} "q"`);
    for (const layout of LAYOUTS) {
      const file = tmp(`m-${layout}${EXPORT_EXTENSIONS[layout]}`);
      const target = layout === 'hf' ? tmp('hf') : file;
      const r = exportWeights(c.config, c.weights, target, { layout, labels });
      const back = await convertCheckpoint(r.files[0]);
      expect(back.meta.labels, layout).to.deep.equal(layout === 'timm' || layout === 'hf' ? labels : undefined);
    }
    expect(() => exportWeights(c.config, c.weights, tmp('x.pth'), { layout: 'official', labels: ['a'] })).to.throw(/1 labels given for a 10-class head/);
  });
});
