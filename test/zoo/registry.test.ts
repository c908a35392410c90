/** The zoo registry: names, URLs, defaults, preprocessing, licences, custom entries. */
import { expect } from 'chai';
import { MODEL_CONFIGS } from '../../src/model/configs';
import { ZooEntry, defaultPretrained, downloadUrl, getPretrained, isZooName, listPretrained, registerPretrained, unregisterPretrained } from '../../src/zoo';
import { ZooError } from '../../src/errors';

const PRE = {
  inputSize: 32,
  cropPct: 1,
  cropMode: 'squash' as const,
  interpolation: 'bicubic' as const,
  mean: [0.5, 0.5, 0.5] as [number, number, number],
  std: [0.5, 0.5, 0.5] as [number, number, number],
};

describe('zoo registry', () => {
  it('covers the official V1 and V2 checkpoints (47 entries, 8 of them FCMAE encoders)', () => {
    const all = listPretrained();
    expect(all).to.have.length(47);
    expect(new Set(all).size).to.equal(all.length);
    expect(listPretrained('convnext_*')).to.have.length(21);
    expect(listPretrained('convnextv2_*')).to.have.length(26);
    expect(listPretrained('convnext_tiny.*')).to.deep.equal([
      'convnext_tiny.fb_in22k_ft_in1k',
      'convnext_tiny.fb_in1k',
      'convnext_tiny.fb_in22k_ft_in1k_384',
      'convnext_tiny.fb_in22k',
    ]);
    expect(listPretrained('convnext*_huge.*')).to.deep.equal([
      'convnextv2_huge.fcmae_ft_in22k_in1k_384',
      'convnextv2_huge.fcmae_ft_in22k_in1k_512',
      'convnextv2_huge.fcmae_ft_in1k',
      'convnextv2_huge.fcmae',
    ]);
  });

  it('every entry is consistent: arch registered, URL file name, classes, preprocessing, licence', () => {
    const files = new Set<string>();
    for (const name of listPretrained()) {
      const e = getPretrained(name);
      expect(e.name).to.equal(name);
      expect(e.arch, name).to.equal(name.split('.')[0]);
      expect(MODEL_CONFIGS, name).to.have.property(e.arch!);
      expect(e.url.startsWith('https://dl.fbaipublicfiles.com/convnext/'), name).to.equal(true);
      expect(e.url.endsWith(`/${e.file}`), name).to.equal(true);
      expect(files.has(e.file), `duplicate file ${e.file}`).to.equal(false);
      files.add(e.file);
      const v2 = name.startsWith('convnextv2_');
      expect(e.license).to.equal(v2 ? 'CC-BY-NC-4.0' : 'MIT');
      expect(e.numClasses).to.equal(name.endsWith('.fb_in22k') ? 21841 : name.endsWith('.fcmae') ? 0 : 1000);
      expect(e.labels).to.equal(name.endsWith('.fb_in22k') ? 'imagenet-22k' : name.endsWith('.fcmae') ? undefined : 'imagenet-1k');
      const size = /_384$/.test(name) ? 384 : /_512$/.test(name) ? 512 : 224;
      const p = e.preprocessing;
      expect(p.inputSize, name).to.equal(size);
      expect(p.interpolation).to.equal('bicubic');
      expect(p.mean).to.deep.equal([0.485, 0.456, 0.406]);
      expect(p.std).to.deep.equal([0.229, 0.224, 0.225]);
      if (size === 224) expect([p.cropPct, p.cropMode], name).to.deep.equal([0.875, 'center']);
      else expect([p.cropPct, p.cropMode], name).to.deep.equal([1, 'squash']);
      // No invented hashes or sizes for real files.
      expect(e.sha256).to.equal(undefined);
      expect(e.sizeBytes).to.equal(undefined);
      expect(Object.isFrozen(e) && Object.isFrozen(e.preprocessing.mean)).to.equal(true);
    }
  });

  it('URLs follow the FB file naming (facts sheet §7)', () => {
    const url = (n: string) => getPretrained(n).url.replace('https://dl.fbaipublicfiles.com/convnext/', '');
    expect(url('convnext_tiny.fb_in1k')).to.equal('convnext_tiny_1k_224_ema.pth');
    expect(url('convnext_base.fb_in1k_384')).to.equal('convnext_base_1k_384.pth');
    expect(url('convnext_large.fb_in22k')).to.equal('convnext_large_22k_224.pth');
    expect(url('convnext_small.fb_in22k_ft_in1k')).to.equal('convnext_small_22k_1k_224.pth');
    expect(url('convnext_xlarge.fb_in22k_ft_in1k')).to.equal('convnext_xlarge_22k_1k_224_ema.pth');
    expect(url('convnext_base.fb_in22k_ft_in1k_384')).to.equal('convnext_base_22k_1k_384.pth');
    expect(url('convnext_xlarge.fb_in22k_ft_in1k_384')).to.equal('convnext_xlarge_22k_1k_384_ema.pth');
    expect(url('convnextv2_atto.fcmae_ft_in1k')).to.equal('convnextv2/im1k/convnextv2_atto_1k_224_ema.pt');
    expect(url('convnextv2_nano.fcmae_ft_in22k_in1k_384')).to.equal('convnextv2/im22k/convnextv2_nano_22k_384_ema.pt');
    expect(url('convnextv2_huge.fcmae_ft_in22k_in1k_512')).to.equal('convnextv2/im22k/convnextv2_huge_22k_512_ema.pt');
  });

  it('bare arch names resolve to timm default tags, but are not zoo names', () => {
    expect(getPretrained('convnext_tiny').name).to.equal('convnext_tiny.fb_in22k_ft_in1k');
    expect(getPretrained('convnext_xlarge').name).to.equal('convnext_xlarge.fb_in22k_ft_in1k');
    expect(getPretrained('convnextv2_tiny').name).to.equal('convnextv2_tiny.fcmae_ft_in22k_in1k');
    expect(getPretrained('convnextv2_atto').name).to.equal('convnextv2_atto.fcmae_ft_in1k');
    expect(getPretrained('convnextv2_huge').name).to.equal('convnextv2_huge.fcmae_ft_in22k_in1k_384');
    expect(defaultPretrained('convnext_atto')).to.equal(undefined); // timm-only weights: not in this zoo
    expect(isZooName('convnext_tiny')).to.equal(false);
    expect(isZooName('convnext_tiny.fb_in1k')).to.equal(true);
    expect(isZooName('convnext_tiny.nope')).to.equal(false);
    expect(isZooName('models/convnext_tiny.pth')).to.equal(false);
  });

  it('unknown names throw ZooError with suggestions', () => {
    expect(() => getPretrained('convnext_tiny.fb_in1')).to.throw(ZooError, /did you mean .*convnext_tiny\.fb_in1k/);
    expect(() => getPretrained('convnext_tiyn.fb_in1k')).to.throw(ZooError, /did you mean .*convnext_tiny\.fb_in1k/);
    expect(() => getPretrained('convnext_atto')).to.throw(ZooError, /no pretrained weights named 'convnext_atto'/);
    expect(() => getPretrained('resnet50.a1_in1k')).to.throw(ZooError, /listPretrained/);
  });

  it('mirror replaces the official base URL only', () => {
    const e = getPretrained('convnextv2_tiny.fcmae_ft_in1k');
    expect(downloadUrl(e)).to.equal(e.url);
    expect(downloadUrl(e, 'http://127.0.0.1:8080/fb')).to.equal('http://127.0.0.1:8080/fb/convnext/convnextv2/im1k/convnextv2_tiny_1k_224_ema.pt');
    expect(downloadUrl(e, 'http://127.0.0.1:8080/')).to.equal('http://127.0.0.1:8080/convnext/convnextv2/im1k/convnextv2_tiny_1k_224_ema.pt');
    expect(() => downloadUrl(e, '/srv/mirror')).to.throw(ZooError, /http\(s\) base URL/);
  });

  describe('custom entries', () => {
    const custom: ZooEntry = {
      name: 'convnext_tiny.my_birds',
      arch: 'convnext_tiny',
      url: 'https://example.org/w/birds.pth',
      file: 'birds.pth',
      numClasses: 3,
      labels: ['a', 'b', 'c'],
      preprocessing: PRE,
      license: 'proprietary',
    };
    afterEach(() => unregisterPretrained(custom.name));

    it('registers, lists after the built-ins, and unregisters', () => {
      registerPretrained(custom);
      expect(isZooName(custom.name)).to.equal(true);
      expect(listPretrained().at(-1)).to.equal(custom.name);
      expect(getPretrained('convnext_tiny').name).to.equal('convnext_tiny.fb_in22k_ft_in1k'); // defaults unchanged
      expect(() => registerPretrained(custom)).to.throw(ZooError, /already registered/);
      expect(() => registerPretrained({ ...custom, file: 'birds2.pth' }, { replace: true })).to.not.throw();
      expect(getPretrained(custom.name).file).to.equal('birds2.pth');
      expect(unregisterPretrained(custom.name)).to.equal(true);
      expect(isZooName(custom.name)).to.equal(false);
    });

    it('rejects invalid entries and built-in names', () => {
      expect(() => registerPretrained({ ...getPretrained('convnext_tiny.fb_in1k') })).to.throw(ZooError, /built in/);
      expect(() => unregisterPretrained('convnext_tiny.fb_in1k')).to.throw(ZooError, /built in/);
      expect(() => registerPretrained({ ...custom, name: 'convnext_tiny' })).to.throw(ZooError, /arch\.tag/);
      expect(() => registerPretrained({ ...custom, name: '../x.y' })).to.throw(ZooError, /arch\.tag/);
      expect(() => registerPretrained({ ...custom, file: '../birds.pth' })).to.throw(ZooError, /plain file name/);
      expect(() => registerPretrained({ ...custom, file: 'a/b.pth' })).to.throw(ZooError, /plain file name/);
      expect(() => registerPretrained({ ...custom, url: 'file:///etc/passwd' })).to.throw(ZooError, /http\(s\) URL/);
      expect(() => registerPretrained({ ...custom, arch: 'convnext_gigantic' })).to.throw(ZooError, /unknown arch/);
      expect(() => registerPretrained({ ...custom, labels: ['a'] })).to.throw(ZooError, /1 labels for 3 classes/);
      expect(() => registerPretrained({ ...custom, sha256: 'abc' })).to.throw(ZooError, /64 hex/);
      expect(() => registerPretrained({ ...custom, file: 'convnext_tiny_1k_224_ema.pth' })).to.throw(ZooError, /already used by 'convnext_tiny.fb_in1k'/);
      expect(isZooName(custom.name)).to.equal(false);
    });
  });
});
