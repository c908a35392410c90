/** The browser bundle's default preprocessing (src/browser/defaults.ts) equals Node's Predictor's. */
import { expect } from 'chai';
import { BROWSER_DEFAULT_PREPROCESSING } from '../../src/browser/defaults';
import { DEFAULT_PREPROCESSING } from '../../src/inference/predictor';

describe('browser defaults', () => {
  it('default preprocessing equals the Node Predictor default', () => {
    expect(BROWSER_DEFAULT_PREPROCESSING).to.deep.equal(DEFAULT_PREPROCESSING);
  });
});
