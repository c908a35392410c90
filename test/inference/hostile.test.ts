/**
 * Predictor on hostile input (issue 14): one image that throws anything, even a non-library error,
 * never ends the run for the others; maxImagePixels and the input-size bound are options checked
 * up front.
 */
import * as path from 'path';
import { expect } from 'chai';
import { ConfigError } from '../../src/errors';
import { ImageError } from '../../src/errors';
import { ImageInput, ItemResult, Predictor, runTolerant } from '../../src/inference/predictor';
import { createModel } from '../../src/factory';
import { useBackend } from '../helpers';
import { encodePng } from '../../src/data/png';

const IMAGES = path.resolve(__dirname, '../../../test/fixtures/images');

describe('Predictor on hostile input', function () {
  this.timeout(120_000);
  let p: Predictor;
  before(async () => {
    await useBackend('wasm');
    p = new Predictor(
      createModel({ version: 2, depths: [1, 1, 1, 1], dims: [8, 16, 32, 64], numClasses: 3 }),
      {},
      { batchSize: 2, preprocessing: { inputSize: 32 } },
    );
  });
  after(() => p.dispose());

  it("an unexpected error in one image (a RangeError from anywhere) is that image's result; the others run", async () => {
    const boom = path.join(IMAGES, 'chelsea.png') + '#boom';
    const real = p.preprocess.bind(p);
    p.preprocess = async (input: ImageInput) => {
      if (input === boom) throw new RangeError('Invalid typed array length: 19660800000');
      return real(input);
    };
    const got: ItemResult<unknown>[] = [];
    try {
      await runTolerant(p, [path.join(IMAGES, 'rocket.jpg'), boom, path.join(IMAGES, 'hubble.jpg')], p.classifyJob({ topk: 1 }), (r) => got.push(r));
    } finally {
      p.preprocess = real;
    }
    expect(got.map((r) => ('error' in r ? 'error' : 'value'))).to.deep.equal(['value', 'error', 'value']);
    const e = (got[1] as { error: Error }).error;
    expect(e).to.be.instanceOf(ImageError);
    expect(e.message).to.equal(`image ${boom}: cannot preprocess (Invalid typed array length: 19660800000)`);
    expect((e as ImageError).detail).to.equal('Invalid typed array length: 19660800000');
  });

  it('a valid 100000 x 1 PNG is classified, not a crash', async () => {
    const strip = { width: 100000, height: 1, data: new Uint8Array(300000).map((_, i) => i & 255) };
    const [top] = await p.classify(encodePng(strip), { topk: 3 });
    expect(top.map((t) => t.index).sort()).to.deep.equal([0, 1, 2]);
  });

  it('maxImagePixels is an option of the Predictor, checked from the header', async () => {
    const small = new Predictor(p.model, {}, { maxImagePixels: 1000, preprocessing: { inputSize: 32 } });
    expect(small.maxImagePixels).to.equal(1000);
    let err: unknown;
    await small.classify(path.join(IMAGES, 'chelsea.png')).catch((e) => (err = e));
    expect(err).to.be.instanceOf(ImageError);
    expect((err as Error).message).to.match(/too large: 338 x 225 pixels is over the limit of 1000 pixels/);
    expect(new Predictor(p.model, {}, { preprocessing: { inputSize: 32 } }).maxImagePixels).to.equal(89_478_485);
    expect(() => new Predictor(p.model, {}, { maxImagePixels: -5 })).to.throw(ImageError, /maxImagePixels must be a positive number/);
  });

  it('an input size past the bound is refused at construction, naming the option', () => {
    expect(() => new Predictor(p.model, {}, { preprocessing: { inputSize: 100000 } })).to.throw(
      ConfigError,
      /^preprocessing.inputSize must be an integer from 32 to 2048 .*got 100000$/,
    );
    expect(() => new Predictor(p.model, {}, { preprocessing: { inputSize: 16 } })).to.throw(ConfigError, /from 32 to 2048/);
  });
});
