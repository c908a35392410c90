/** Layout detection, key remapping, tensor transforms, architecture inference and their errors. */
import { expect } from 'chai';
import * as path from 'path';
import { CheckpointError } from '../../weights-converter/errors';
import { checkArch, detectLayout, inferConfig, remapStateDict, toTfjsLayout } from '../../weights-converter/layouts';
import { convertCheckpoint } from '../../weights-converter/convert';
import { readCheckpoint } from '../../weights-converter/read';
import { writeSafetensors } from '../../weights-converter/safetensors';
import { RawTensor } from '../../weights-converter/types';
import { parameterSpecs, resolveConfig } from '../../src/model';
import * as fs from 'fs';
import * as os from 'os';

const PARITY = path.resolve(__dirname, '../../../test/fixtures/parity');

function raw(shape: number[], fill?: (i: number) => number): RawTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, dtype: 'float32', data: Float32Array.from({ length: n }, (_, i) => (fill ? fill(i) : i)) };
}

describe('weights-converter layouts', () => {
  it('detects each layout from its stem key, and refuses unknown or FCMAE dicts with what they are', () => {
    expect(detectLayout(['downsample_layers.0.0.weight', 'stages.0.0.dwconv.weight'])).to.equal('official');
    expect(detectLayout(['stem.0.weight'])).to.equal('timm');
    expect(detectLayout(['features.0.0.weight'])).to.equal('torchvision');
    expect(detectLayout(['convnext.embeddings.patch_embeddings.weight'])).to.equal('hf');
    expect(detectLayout(['convnextv2.embeddings.patch_embeddings.weight'])).to.equal('hf');
    expect(detectLayout(['embeddings.patch_embeddings.weight'])).to.equal('hf');
    expect(() => detectLayout(['conv1.weight', 'fc.weight'], 'resnet.pth')).to.throw(
      CheckpointError,
      /resnet\.pth: not a ConvNeXt state dict.*first keys: conv1\.weight, fc\.weight/,
    );
    expect(() => detectLayout(['encoder.downsample_layers.0.0.kernel', 'mask_token', 'decoder.0.weight'])).to.throw(
      CheckpointError,
      /FCMAE pretraining checkpoint/,
    );
  });

  it('transforms PyTorch layouts to TF.js layouts element by element', () => {
    // conv OIHW [2,3,2,2] -> HWIO [2,2,3,2]: out[h][w][i][o] = in[o][i][h][w]
    const conv = toTfjsLayout('stem.conv.weight', raw([2, 3, 2, 2]) as { shape: number[]; data: Float32Array });
    expect(conv.shape).to.deep.equal([2, 2, 3, 2]);
    const at = (o: number, i: number, h: number, w: number) => ((o * 3 + i) * 2 + h) * 2 + w;
    expect(conv.data[((1 * 2 + 0) * 3 + 2) * 2 + 1]).to.equal(at(1, 2, 1, 0));
    // depthwise [C,1,k,k] -> [k,k,C,1]
    const dw = toTfjsLayout('stages.0.blocks.0.conv_dw.weight', raw([4, 1, 3, 3]) as { shape: number[]; data: Float32Array });
    expect(dw.shape).to.deep.equal([3, 3, 4, 1]);
    expect(dw.data[(2 * 3 + 1) * 4 + 3]).to.equal(3 * 9 + 2 * 3 + 1);
    // Linear [out,in] -> [in,out]; a timm 1x1 conv too
    for (const shape of [
      [5, 3],
      [5, 3, 1, 1],
    ]) {
      const fc = toTfjsLayout('stages.0.blocks.0.mlp.fc1.weight', raw(shape) as { shape: number[]; data: Float32Array });
      expect(fc.shape).to.deep.equal([3, 5]);
      expect(fc.data[2 * 5 + 4]).to.equal(4 * 3 + 2);
    }
    // layer scale [C,1,1] and GRN [1,1,1,C] -> [C]
    expect(toTfjsLayout('stages.0.blocks.0.gamma', raw([6, 1, 1]) as { shape: number[]; data: Float32Array }).shape).to.deep.equal([6]);
    expect(toTfjsLayout('stages.0.blocks.0.mlp.grn.weight', raw([1, 1, 1, 6]) as { shape: number[]; data: Float32Array }).shape).to.deep.equal([6]);
    // impossible shapes are named
    expect(() => toTfjsLayout('stages.0.blocks.0.conv_dw.weight', raw([4, 2, 3, 3]) as { shape: number[]; data: Float32Array }, 'x.pth')).to.throw(
      CheckpointError,
      /x\.pth: tensor stages\.0\.blocks\.0\.conv_dw\.weight has shape \[4, 2, 3, 3\], expected \[C, 1, k, k\]/,
    );
    expect(() => toTfjsLayout('head.norm.weight', raw([4, 4]) as { shape: number[]; data: Float32Array })).to.throw(CheckpointError, /expected a 1-D/);
  });

  it('maps every key of every committed layout onto the model parameters, none left over', async () => {
    for (const c of fs.readdirSync(PARITY)) {
      const meta = JSON.parse(fs.readFileSync(path.join(PARITY, c, 'meta.json'), 'utf8'));
      const ck = await readCheckpoint(path.join(PARITY, c, meta.checkpoint));
      const r = remapStateDict(ck.tensors);
      expect(r.layout, c).to.equal(meta.layout);
      const config = inferConfig(r.weights, { layout: r.layout });
      const names = parameterSpecs(config)
        .map((p) => p.name)
        .sort();
      expect([...r.weights.keys()].sort(), c).to.deep.equal(names);
      expect(config.numClasses).to.equal(meta.num_classes);
      expect(config.version).to.equal(meta.version);
    }
  });

  it('infers registered names and checks --arch', () => {
    const cfg = resolveConfig('convnextv2_atto');
    const w = new Map(parameterSpecs(cfg).map((p) => [p.name, { shape: p.shape, data: new Float32Array(0) }]));
    const inferred = inferConfig(w, { layout: 'official' });
    expect(inferred.name).to.equal('convnextv2_atto');
    expect(inferred).to.include({ version: 2, useGrn: true, layerScaleInit: null, numClasses: 1000, headNormEps: 1e-6 });
    expect(inferConfig(w, { layout: 'hf' }).headNormEps).to.equal(1e-12);
    expect(inferConfig(w, { layout: 'hf', hfLayerNormEps: 1e-6 }).headNormEps).to.equal(1e-6);
    expect(() => checkArch(inferred, 'convnextv2_atto')).not.to.throw();
    expect(() => checkArch(inferred, 'convnext_atto', 'a.pt')).to.throw(
      CheckpointError,
      /a\.pt: checkpoint is V2 depths \[2, 2, 6, 2\] dims \[40, 80, 160, 320\], but --arch convnext_atto is V1/,
    );
    w.delete('head.fc.weight');
    w.delete('head.fc.bias');
    expect(inferConfig(w, { layout: 'official' }).numClasses).to.equal(0);
  });
});

describe('convertCheckpoint errors (names the key and the problem)', () => {
  let tmp: string;
  let base: Map<string, RawTensor>;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-conv-'));
    base = (await readCheckpoint(path.join(PARITY, 'v1_timm', 'convnext_test.pth'))).tensors;
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  function write(name: string, tensors: Map<string, RawTensor>): string {
    const f = path.join(tmp, name);
    writeSafetensors(f, new Map([...tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }])));
    return f;
  }

  it('converts the untouched state dict', async () => {
    const c = await convertCheckpoint(write('ok.safetensors', base));
    expect(c.meta.source).to.include({ layout: 'timm', format: 'safetensors' });
  });

  it('a missing key', async () => {
    const m = new Map(base);
    m.delete('stages.2.blocks.1.mlp.fc2.bias');
    const f = write('missing.safetensors', m);
    try {
      await convertCheckpoint(f);
      expect.fail('should throw');
    } catch (e) {
      expect(e).to.be.instanceOf(CheckpointError);
      expect((e as Error).message).to.match(/missing 1: stages\.2\.blocks\.1\.mlp\.fc2\.bias \[\d+\]/);
    }
  });

  it('an unexpected key', async () => {
    const m = new Map(base);
    m.set('stages.0.blocks.0.attn.qkv.weight', raw([3, 3]));
    let err: Error | undefined;
    await convertCheckpoint(write('unexpected.safetensors', m)).catch((e) => (err = e));
    expect(err).to.be.instanceOf(CheckpointError);
    expect(err!.message).to.match(/1 unexpected key\(s\) for the timm layout: stages\.0\.blocks\.0\.attn\.qkv\.weight \[3, 3\]/);
  });

  it('a wrong shape', async () => {
    const m = new Map(base);
    const t = m.get('stages.1.blocks.0.norm.weight')!;
    m.set('stages.1.blocks.0.norm.weight', raw([t.shape[0] + 1]));
    let err: Error | undefined;
    await convertCheckpoint(write('shape.safetensors', m)).catch((e) => (err = e));
    expect(err).to.be.instanceOf(CheckpointError);
    expect(err!.message).to.match(/shape mismatch 1: stages\.1\.blocks\.0\.norm\.weight \(as stages\.1\.blocks\.0\.norm\.weight\): \[13\] vs model \[12\]/);
  });

  it('a wrong --arch and an unknown --layout', async () => {
    const f = write('arch.safetensors', base);
    let err: Error | undefined;
    await convertCheckpoint(f, { arch: 'convnext_tiny' }).catch((e) => (err = e));
    expect(err!.message).to.match(/but --arch convnext_tiny is V1 depths \[3, 3, 9, 3\]/);
    err = undefined;
    await convertCheckpoint(f, { layout: 'keras' as never }).catch((e) => (err = e));
    expect(err!.message).to.match(/unknown layout 'keras'/);
    err = undefined;
    await convertCheckpoint(f, { layout: 'official' }).catch((e) => (err = e));
    expect(err!.message).to.match(/unexpected key\(s\) for the official layout \(the keys look like the timm layout[^)]*\): stem\.0\.weight/);
  });
});
