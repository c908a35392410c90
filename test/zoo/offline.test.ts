/** The first hour without network: a failed zoo download says what to do instead (issue 14). */
import * as fs from 'fs';
import { expect } from 'chai';
import { DownloadError } from '../../src/errors';
import { cachePaths, resolvePretrained } from '../../src/zoo/cache';
import { getPretrained } from '../../src/zoo/registry';
import { useTmpDir } from '../helpers';

describe('zoo/offline first use', () => {
  const tmp = useTmpDir('convnext-offline-');

  it('an unreachable host (ENOTFOUND) names the cache path, CONVNEXT_MIRROR and convnext convert', async () => {
    const notFound = async (): Promise<Response> => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('getaddrinfo ENOTFOUND dl.fbaipublicfiles.com'), { code: 'ENOTFOUND' }) });
    };
    const entry = getPretrained('convnext_tiny.fb_in1k');
    const { checkpoint } = cachePaths(entry, { cacheDir: tmp(), env: {} });
    let err: unknown;
    await resolvePretrained('convnext_tiny.fb_in1k', { cacheDir: tmp(), env: {}, fetchImpl: notFound as typeof fetch }).catch((e) => (err = e));
    expect(err).to.be.instanceOf(DownloadError);
    const m = (err as Error).message;
    expect(m).to.match(/ENOTFOUND/);
    expect(m).to.include(`place it at ${checkpoint}`);
    expect(m).to.include(`CONVNEXT_MIRROR=http://host/ to a server holding ${entry.url.replace('https://dl.fbaipublicfiles.com/', '')}`);
    expect(m).to.include('convnext convert <checkpoint.pth> <dir>, then --model <dir>');
    expect(
      fs.readdirSync(tmp(), { recursive: true } as { recursive: true }).filter((f) => String(f).includes('partial')),
      'no partial file left',
    ).to.deep.equal([]);
  });
});
