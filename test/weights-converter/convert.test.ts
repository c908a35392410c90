/** convertCheckpoint (weights-converter/convert.ts): non-finite weights and a wrong --layout are refused with short, named reasons. */
import * as path from 'path';
import { expect } from 'chai';
import { convertCheckpoint } from '../../weights-converter/convert';
import { exportWeights } from '../../weights-converter/export';
import { expectCheckpointErrorAsync, fixture, useTempDir } from './helpers';

describe('convertCheckpoint', () => {
  const tmp = useTempDir();

  it('refuses NaN/Inf weights, naming the count and the tensors, unless allowNonFinite', async () => {
    const c = await convertCheckpoint(fixture('../parity/v1_official/checkpoint.pth'));
    const w = new Map([...c.weights].map(([k, t]) => [k, { shape: t.shape, data: Float32Array.from(t.data) }]));
    w.get('stem.conv.bias')!.data[0] = NaN;
    w.get('head.fc.weight')!.data.fill(Infinity, 0, 3);
    const file = path.join(tmp.dir, 'nan.pth');
    exportWeights(c.config, w, file, { layout: 'official' });
    const e = await expectCheckpointErrorAsync(
      convertCheckpoint(file),
      /4 NaN\/Inf value\(s\) in 2 tensor\(s\): downsample_layers\.0\.0\.bias \(1\), head\.weight \(3\); convert with allowNonFinite/,
    );
    expect(e.file).to.equal(file);
    const ok = await convertCheckpoint(file, { allowNonFinite: true });
    expect(Number.isNaN(ok.weights.get('stem.conv.bias')!.data[0])).to.equal(true);
  });

  it('a wrong layout names the layout the keys look like and lists a few keys, not all', async () => {
    const e = await expectCheckpointErrorAsync(
      convertCheckpoint(fixture('../parity/v1_official/checkpoint.pth'), { layout: 'hf' }),
      /unexpected key\(s\) for the hf layout \(the keys look like the official layout: drop --layout, or give --layout official\)/,
    );
    expect(e.message).to.match(/, \.\.\. and \d+ more$/);
    expect(e.message.length, 'a short message, not every key').to.be.below(700);
  });
});
