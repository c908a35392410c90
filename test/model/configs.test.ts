/** The configs table (src/model/configs.ts): timm names, exact parameter and MAC counts, validation. */
import { expect } from 'chai';
import { OFFICIAL_PARAMS } from '../reference';
import { ConfigError } from '../../src/errors';
import { MODEL_CONFIGS, countMacs, countParams, listModels, resolveConfig } from '../../src/model';

/** Published counts in millions, to two decimals. */
const PUBLISHED_M: Record<string, number> = {
  convnext_atto: 3.7,
  convnext_femto: 5.22,
  convnext_pico: 9.05,
  convnext_nano: 15.59,
  convnext_xlarge: 350.2,
  convnextv2_femto: 5.23,
  convnextv2_pico: 9.07,
  convnextv2_nano: 15.62,
  convnextv2_tiny: 28.64,
  convnextv2_base: 88.72,
  convnextv2_large: 197.96,
  convnextv2_huge: 660.29,
};

describe('model registry', () => {
  it('registers every published V1 and V2 size under timm names', () => {
    expect(listModels('convnext_*')).to.deep.equal([
      'convnext_atto',
      'convnext_femto',
      'convnext_pico',
      'convnext_nano',
      'convnext_tiny',
      'convnext_small',
      'convnext_base',
      'convnext_large',
      'convnext_xlarge',
    ]);
    expect(listModels('convnextv2_*')).to.deep.equal([
      'convnextv2_atto',
      'convnextv2_femto',
      'convnextv2_pico',
      'convnextv2_nano',
      'convnextv2_tiny',
      'convnextv2_base',
      'convnextv2_large',
      'convnextv2_huge',
    ]);
    expect(listModels()).to.have.length(17);
  });

  it('counts parameters exactly as the official models', () => {
    for (const [name, n] of Object.entries(OFFICIAL_PARAMS)) expect(countParams(MODEL_CONFIGS[name]), name).to.equal(n);
    for (const [name, m] of Object.entries(PUBLISHED_M)) expect(+(countParams(MODEL_CONFIGS[name]) / 1e6).toFixed(2), name).to.equal(m);
  });

  it('counts MACs as the papers (ConvNeXt-T 4.5G, -B 15.4G, V2-atto 0.55G at 224)', () => {
    expect(countMacs(MODEL_CONFIGS.convnext_tiny) / 1e9).to.be.closeTo(4.47, 0.02);
    expect(countMacs(MODEL_CONFIGS.convnext_base) / 1e9).to.be.closeTo(15.36, 0.05);
    expect(countMacs(MODEL_CONFIGS.convnextv2_atto) / 1e9).to.be.closeTo(0.55, 0.01);
  });

  it('V1 has layer scale 1e-6 and no GRN; V2 the reverse', () => {
    expect(MODEL_CONFIGS.convnext_tiny).to.include({ layerScaleInit: 1e-6, useGrn: false, lnEps: 1e-6 });
    expect(MODEL_CONFIGS.convnextv2_tiny).to.include({ layerScaleInit: null, useGrn: true });
  });

  it('rejects unknown names and bad custom configs with the field named', () => {
    expect(() => resolveConfig('convnext_tinny')).to.throw(ConfigError, /unknown model 'convnext_tinny'/);
    expect(() => resolveConfig({ version: 1, depths: [1, 1, 1] as never, dims: [8, 16, 24, 32] })).to.throw(
      ConfigError,
      /depths must be four positive integers/,
    );
    expect(() => resolveConfig('convnext_tiny', { numClasses: -1 })).to.throw(ConfigError, /numClasses/);
    expect(() => resolveConfig('convnext_tiny', { dropPathRate: 1 })).to.throw(ConfigError, /dropPathRate/);
    expect(() => resolveConfig({ version: 3 as never, depths: [1, 1, 1, 1], dims: [8, 8, 8, 8] })).to.throw(ConfigError, /version/);
  });

  it('takes custom depths, dims, classes and eps', () => {
    const c = resolveConfig({ version: 2, depths: [2, 1, 3, 1], dims: [12, 20, 28, 44], numClasses: 7, headNormEps: 1e-12 });
    expect(c).to.include({ version: 2, numClasses: 7, headNormEps: 1e-12, useGrn: true, layerScaleInit: null });
  });
});
