/** The one name rule (src/factory/names.ts): architectures, tags, default tags, paths, URLs, errors. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { ConfigError } from '../../src/errors';
import { archOf, parseModelName } from '../../src/factory';
import { defaultPretrained } from '../../src/zoo';

describe('model names', () => {
  it('a bare architecture is the architecture, or its default tag where weights are needed', () => {
    expect(parseModelName('convnext_tiny', false)).to.deep.equal({ kind: 'arch', arch: 'convnext_tiny' });
    const tag = defaultPretrained('convnext_tiny')!;
    expect(tag).to.match(/^convnext_tiny\./);
    expect(parseModelName('convnext_tiny', true)).to.deep.equal({ kind: 'pretrained', arch: 'convnext_tiny', tag, defaulted: true });
  });

  it('arch.tag is a pretrained tag, with or without weights wanted', () => {
    for (const w of [false, true]) {
      expect(parseModelName('convnext_tiny.fb_in1k', w)).to.deep.equal({
        kind: 'pretrained',
        arch: 'convnext_tiny',
        tag: 'convnext_tiny.fb_in1k',
        defaulted: false,
      });
    }
    expect(archOf('convnextv2_atto.fcmae_ft_in1k')).to.equal('convnextv2_atto');
  });

  it('paths and URLs', () => {
    expect(parseModelName('https://example.org/m/model.json', true)).to.deep.equal({ kind: 'url', url: 'https://example.org/m/model.json' });
    expect(parseModelName('runs/a', true)).to.deep.equal({ kind: 'path', path: 'runs/a' });
    expect(parseModelName('convnext_tiny_1k_224_ema.pth', true)).to.deep.equal({ kind: 'path', path: 'convnext_tiny_1k_224_ema.pth' });
    expect(archOf('./models/x')).to.equal(undefined);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'names-'));
    const cwd = process.cwd();
    try {
      process.chdir(tmp);
      fs.mkdirSync('mymodel');
      expect(parseModelName('mymodel', true)).to.deep.equal({ kind: 'path', path: 'mymodel' });
    } finally {
      process.chdir(cwd);
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('unknown names and tags are errors with suggestions', () => {
    expect(() => parseModelName('convnext_tinny', false)).to.throw(ConfigError, /unknown model 'convnext_tinny'.*did you mean convnext_tiny/);
    expect(() => parseModelName('tiny', false)).to.throw(ConfigError, /unknown model 'tiny'/);
    expect(() => parseModelName('convnext_tiny.nope', true)).to.throw(
      ConfigError,
      /unknown pretrained tag 'convnext_tiny.nope' for convnext_tiny \(its tags: .*convnext_tiny\.fb_in1k/,
    );
    expect(() => parseModelName('  ', true)).to.throw(ConfigError, /empty/);
  });
});
