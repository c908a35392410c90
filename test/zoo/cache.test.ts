/**
 * Downloads and the pretrained cache against a local HTTP server on 127.0.0.1 (port 0) that serves a
 * small official-layout fixture checkpoint, well-behaved or not (404, 500, dropped connection, stall,
 * redirect). Every server is closed at the end of its test.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import { useBackend } from '../helpers';
import { loadConvertedModel } from '../../src/io/model_dir';
import { loadModel } from '../../src/factory';
import { CheckpointError } from '../../weights-converter/errors';
import {
  DownloadProgress,
  ZooEntry,
  ZooProgress,
  cacheState,
  defaultCacheDir,
  download,
  registerPretrained,
  resolvePretrained,
  unregisterPretrained,
} from '../../src/zoo';
import { DownloadError } from '../../src/errors';
import { ZooError } from '../../src/errors';

const FIXTURE = path.resolve(__dirname, '../../../test/fixtures/parity/v1_official/checkpoint.pth');
const DATA = fs.readFileSync(FIXTURE);
const SHA = crypto.createHash('sha256').update(DATA).digest('hex');
const REL = '/convnext/convnext_test_fixture.pth';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

interface TestServer {
  base: string;
  /** Paths requested, in order. */
  requests: string[];
  close(): Promise<void>;
}

const MAX_REQUESTS = 20;

/** Serves `routes` on 127.0.0.1:<random port>; anything else is a 404. */
async function serve(routes: Record<string, Handler>): Promise<TestServer> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    if (requests.length > MAX_REQUESTS) {
      res.writeHead(429).end();
      return;
    }
    const h = routes[req.url ?? ''];
    if (h) h(req, res);
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Runs `fn` against a server of `routes` (see serve) and closes the server after it, whatever happens. */
async function withServer(routes: Record<string, Handler>, fn: (srv: TestServer) => Promise<void>): Promise<void> {
  const srv = await serve(routes);
  try {
    await fn(srv);
  } finally {
    await srv.close();
  }
}

/** 200 with Content-Length, in `chunk`-byte writes `delayMs` apart (several progress events when > 0). */
function sendFile(data: Buffer, chunk = 16384, headers: http.OutgoingHttpHeaders = { 'content-length': data.length }, delayMs = 0): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', ...headers });
    let off = 0;
    const next = () => {
      if (off >= data.length) return void res.end();
      const piece = data.subarray(off, off + chunk);
      off += piece.length;
      res.write(piece, () => (delayMs ? setTimeout(next, delayMs) : setImmediate(next)));
    };
    next();
  };
}

/** Promises the full length, sends half, then kills the socket. */
const dropHalfway: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': DATA.length });
  res.write(DATA.subarray(0, DATA.length >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
};

/** Promises the full length, sends 1000 bytes, then goes silent (until the server closes). */
const stallAfterStart: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': DATA.length });
  res.write(DATA.subarray(0, 1000));
};

/** Never answers. */
const stallBeforeHeaders: Handler = () => undefined;

/** Every file under dir (recursively); empty directories do not count. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => fs.statSync(path.join(dir, f)).isFile());
}

async function expectRejects<E extends Error>(p: Promise<unknown>, type: new (...a: never[]) => E, re: RegExp): Promise<E> {
  try {
    await p;
  } catch (e) {
    expect(e, (e as Error).stack).to.be.instanceOf(type);
    expect((e as Error).message).to.match(re);
    return e as E;
  }
  return expect.fail(`expected a ${type.name} matching ${re}`);
}

/** Monotone, every event with the total, from 0 to the full size; `minEvents` only where chunks are spaced out. */
function expectMonotoneProgress(events: DownloadProgress[], size: number, minEvents = 2): void {
  expect(events.length).to.be.at.least(minEvents);
  for (let i = 1; i < events.length; i++) expect(events[i].loaded).to.be.at.least(events[i - 1].loaded);
  for (const e of events) {
    expect(e.status).to.equal('download');
    expect(e.total).to.equal(size);
  }
  expect(events[0].loaded).to.equal(0);
  expect(events.at(-1)!.loaded).to.equal(size);
}

let tmp: string;
beforeEach(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convnext-zoo-'))));
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('zoo download', () => {
  it('streams to dest with monotone progress, hashing and verifying', async () => {
    await withServer({ [REL]: sendFile(DATA, 16384, { 'content-length': DATA.length }, 20) }, async (srv) => {
      const dest = path.join(tmp, 'sub', 'ckpt.pth');
      const events: DownloadProgress[] = [];
      const r = await download(srv.base + REL, dest, { expectedSize: DATA.length, sha256: SHA.toUpperCase(), onProgress: (p) => events.push(p) });
      expect(r).to.deep.equal({ path: dest, bytes: DATA.length, sha256: SHA });
      expect(fs.readFileSync(dest).equals(DATA)).to.equal(true);
      // Six chunks 20 ms apart: a start event plus (nearly always) one per chunk.
      expectMonotoneProgress(events, DATA.length, 3);
      expect(events[0].file).to.equal('ckpt.pth');
      expect(filesUnder(tmp)).to.deep.equal([path.join('sub', 'ckpt.pth')]);
    });
  });

  it('follows redirects', async () => {
    await withServer(
      {
        '/moved.pth': (_req, res) => res.writeHead(302, { location: REL }).end(),
        [REL]: sendFile(DATA),
      },
      async (srv) => {
        const r = await download(`${srv.base}/moved.pth`, path.join(tmp, 'a.pth'));
        expect(r.sha256).to.equal(SHA);
        expect(srv.requests).to.deep.equal(['/moved.pth', REL]);
      },
    );
  });

  it('without Content-Length: still checks expectedSize and reports progress without a total', async () => {
    await withServer({ [REL]: sendFile(DATA, 10000, {}) }, async (srv) => {
      const events: DownloadProgress[] = [];
      await expectRejects(
        download(srv.base + REL, path.join(tmp, 'a.pth'), { expectedSize: DATA.length + 1 }),
        DownloadError,
        new RegExp(`received ${DATA.length} bytes, expected ${DATA.length + 1}`),
      );
      await download(srv.base + REL, path.join(tmp, 'b.pth'), { onProgress: (p) => events.push(p) });
      expect(events.every((e) => e.total === undefined)).to.equal(true);
      expect(events.at(-1)!.loaded).to.equal(DATA.length);
      expect(filesUnder(tmp)).to.deep.equal(['b.pth']);
    });
  });

  for (const status of [404, 500]) {
    it(`HTTP ${status}: DownloadError naming the URL and status, no file`, async () => {
      await withServer({ '/err.pth': (_req, res) => res.writeHead(status).end('nope') }, async (srv) => {
        const url = `${srv.base}/err.pth`;
        const e = await expectRejects(
          download(url, path.join(tmp, 'x.pth')),
          DownloadError,
          new RegExp(`${url.replace(/[.]/g, '\\.')} failed: HTTP ${status}`),
        );
        expect(e.status).to.equal(status);
        expect(e.url).to.equal(url);
        expect(filesUnder(tmp)).to.deep.equal([]);
      });
    });
  }

  it('a connection dropped mid-body: DownloadError "connection closed after N of M bytes", partial removed', async () => {
    await withServer({ [REL]: dropHalfway }, async (srv) => {
      await expectRejects(download(srv.base + REL, path.join(tmp, 'x.pth')), DownloadError, new RegExp(`connection closed after \\d+ of ${DATA.length} bytes`));
      expect(filesUnder(tmp)).to.deep.equal([]);
    });
  });

  it('size and sha256 mismatches name both values', async () => {
    await withServer({ [REL]: sendFile(DATA) }, async (srv) => {
      const wrongSha = 'ab'.repeat(32);
      await expectRejects(
        download(srv.base + REL, path.join(tmp, 'x.pth'), { expectedSize: 123 }),
        DownloadError,
        new RegExp(`size mismatch: the server sends ${DATA.length} bytes, expected 123`),
      );
      await expectRejects(
        download(srv.base + REL, path.join(tmp, 'x.pth'), { sha256: wrongSha }),
        DownloadError,
        new RegExp(`sha256 mismatch: got ${SHA}, expected ${wrongSha}`),
      );
      expect(filesUnder(tmp)).to.deep.equal([]);
    });
  });

  it('times out when no data arrives for timeoutMs (before and during the body)', async () => {
    await withServer({ '/stall-body.pth': stallAfterStart, '/stall-head.pth': stallBeforeHeaders }, async (srv) => {
      const t0 = Date.now();
      await expectRejects(
        download(`${srv.base}/stall-body.pth`, path.join(tmp, 'x.pth'), { timeoutMs: 200 }),
        DownloadError,
        new RegExp(`no data for 200 ms \\(timed out after 1000 of ${DATA.length} bytes\\)`),
      );
      await expectRejects(
        download(`${srv.base}/stall-head.pth`, path.join(tmp, 'y.pth'), { timeoutMs: 200 }),
        DownloadError,
        /no data for 200 ms \(timed out after 0 bytes\)/,
      );
      expect(Date.now() - t0).to.be.below(10000);
      expect(filesUnder(tmp)).to.deep.equal([]);
    });
  });

  it('an aborted signal cancels the download', async () => {
    await withServer({ [REL]: stallAfterStart }, async (srv) => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      await expectRejects(download(srv.base + REL, path.join(tmp, 'x.pth'), { signal: ac.signal, timeoutMs: 20000 }), DownloadError, /aborted/);
      expect(filesUnder(tmp)).to.deep.equal([]);
    });
  });
});

describe('zoo cache (resolvePretrained)', () => {
  const NAME = 'convnext_test.fixture';
  // Under the official base, so the mirror option maps it onto the local server.
  const ENTRY: ZooEntry = {
    name: NAME,
    url: `https://dl.fbaipublicfiles.com${REL}`,
    file: 'convnext_test_fixture.pth',
    numClasses: 10,
    preprocessing: { inputSize: 32, cropPct: 1, cropMode: 'squash', interpolation: 'bicubic', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    license: 'MIT',
  };
  /** Options shared by every resolve: a private cache, an empty environment (no CONVNEXT_* leaks in). */
  const opts = (srv?: TestServer) => ({ cacheDir: tmp, mirror: srv?.base, env: {}, timeoutMs: 5000 });

  before(async () => {
    await useBackend('cpu');
    registerPretrained(ENTRY);
  });
  after(() => unregisterPretrained(NAME));

  it('downloads, converts and caches; later resolves use no network, also offline', async () => {
    await withServer({ [REL]: sendFile(DATA) }, async (srv) => {
      const r1 = await resolvePretrained(NAME, opts(srv));
      expect(r1).to.include({ dir: path.join(tmp, NAME), downloaded: true, converted: true });
      expect(r1.entry.name).to.equal(NAME);
      expect(srv.requests).to.deep.equal([REL]);
      // Kept checkpoint + converted dir, nothing else.
      expect(fs.readFileSync(path.join(tmp, 'checkpoints', ENTRY.file)).equals(DATA)).to.equal(true);
      expect(filesUnder(tmp).filter((f) => !f.startsWith(NAME + path.sep) && !f.startsWith('checkpoints'))).to.deep.equal([]);
      expect(cacheState(NAME, { cacheDir: tmp })).to.equal('converted');

      const { model, meta } = await loadConvertedModel(r1.dir);
      try {
        expect(meta.config.numClasses).to.equal(10);
        expect(meta.source).to.include({ tag: NAME, url: ENTRY.url, file: ENTRY.file, layout: 'official', license: 'MIT' });
        expect(meta.source).to.not.have.property('labelSet');
        expect(meta.preprocessing).to.deep.equal(ENTRY.preprocessing);
        expect(meta.storage).to.equal('float32');
      } finally {
        model.dispose();
      }

      const r2 = await resolvePretrained(NAME, opts(srv));
      expect(r2).to.include({ dir: r1.dir, downloaded: false, converted: false });
      const r3 = await resolvePretrained(NAME, { ...opts(srv), offline: true });
      expect(r3.dir).to.equal(r1.dir);
      // Converted dir gone, checkpoint kept: re-converts without the network (offline via the environment).
      fs.rmSync(r1.dir, { recursive: true });
      expect(cacheState(NAME, { cacheDir: tmp })).to.equal('checkpoint');
      const r4 = await resolvePretrained(NAME, { cacheDir: tmp, env: { CONVNEXT_OFFLINE: '1' } });
      expect(r4).to.include({ dir: r1.dir, downloaded: false, converted: true });
      // fp16 is a sibling directory, converted from the same checkpoint.
      const r5 = await resolvePretrained(NAME, { ...opts(srv), fp16: true });
      expect(r5).to.include({ dir: path.join(tmp, `${NAME}-fp16`), downloaded: false, converted: true });
      const loaded = await loadModel(NAME, { ...opts(srv), fp16: true });
      loaded.model.dispose();
      expect(loaded.meta.storage).to.equal('float16');
      expect(srv.requests, 'one request in all').to.have.length(1);
    });
  });

  it('offline cache miss: ZooError saying how to get it, no request', async () => {
    await withServer({ [REL]: sendFile(DATA) }, async (srv) => {
      const ckpt = path.join(tmp, 'checkpoints', ENTRY.file);
      await expectRejects(resolvePretrained(NAME, { ...opts(srv), offline: true }), ZooError, /not in the cache and offline mode is on/);
      const e = await expectRejects(resolvePretrained(NAME, { ...opts(srv), env: { CONVNEXT_OFFLINE: 'true' } }), ZooError, /offline/);
      expect(e.message).to.include(ckpt).and.include('CONVNEXT_MIRROR').and.include('convnext/convnext_test_fixture.pth');
      // The option cannot switch the environment's offline mode off.
      await expectRejects(resolvePretrained(NAME, { ...opts(srv), offline: false, env: { CONVNEXT_OFFLINE: '1' } }), ZooError, /offline/);
      expect(srv.requests).to.deep.equal([]);
      expect(filesUnder(tmp)).to.deep.equal([]);
    });
  });

  it('reads CONVNEXT_CACHE and CONVNEXT_MIRROR from the environment', async () => {
    await withServer({ [REL]: sendFile(DATA) }, async (srv) => {
      const cache = path.join(tmp, 'env-cache');
      const r = await resolvePretrained(NAME, { env: { CONVNEXT_CACHE: cache, CONVNEXT_MIRROR: `${srv.base}/` } });
      expect(r.dir).to.equal(path.join(cache, NAME));
      expect(srv.requests).to.deep.equal([REL]);
    });
  });

  it('default cache dir: CONVNEXT_CACHE, then XDG_CACHE_HOME, then ~/.cache', () => {
    expect(defaultCacheDir({ CONVNEXT_CACHE: '/a/b', XDG_CACHE_HOME: '/x' })).to.equal(path.resolve('/a/b'));
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/x' })).to.equal(path.resolve('/x/convnext-tfjs'));
    expect(defaultCacheDir({})).to.equal(path.join(os.homedir(), '.cache', 'convnext-tfjs'));
  });

  it('HTTP 404: DownloadError with status and URL; no cache entry', async () => {
    await withServer({}, async (srv) => {
      const e = await expectRejects(resolvePretrained(NAME, opts(srv)), DownloadError, /HTTP 404/);
      expect(e.message).to.include(`${srv.base}${REL}`);
      expect(filesUnder(tmp)).to.deep.equal([]);
      expect(fs.existsSync(path.join(tmp, NAME))).to.equal(false);
    });
  });

  it('a connection dropped mid-file: DownloadError, partial gone, no model dir', async () => {
    await withServer({ [REL]: dropHalfway }, async (srv) => {
      await expectRejects(resolvePretrained(NAME, opts(srv)), DownloadError, new RegExp(`connection closed after \\d+ of ${DATA.length} bytes`));
      expect(filesUnder(tmp)).to.deep.equal([]);
      expect(fs.existsSync(path.join(tmp, NAME))).to.equal(false);
    });
  });

  it('an entry with the wrong size or sha256: DownloadError with both values, no cache entry', async () => {
    await withServer({ [REL]: sendFile(DATA) }, async (srv) => {
      const wrongSha = 'cd'.repeat(32);
      await expectRejects(
        resolvePretrained({ ...ENTRY, sizeBytes: DATA.length - 1 }, opts(srv)),
        DownloadError,
        new RegExp(`server sends ${DATA.length} bytes, expected ${DATA.length - 1}`),
      );
      await expectRejects(resolvePretrained({ ...ENTRY, sha256: wrongSha }, opts(srv)), DownloadError, new RegExp(`got ${SHA}, expected ${wrongSha}`));
      expect(filesUnder(tmp)).to.deep.equal([]);
      // The right values pass.
      const r = await resolvePretrained({ ...ENTRY, sizeBytes: DATA.length, sha256: SHA }, opts(srv));
      expect(r.downloaded).to.equal(true);
    });
  });

  it('a cached checkpoint that does not match the entry hash is refused, not silently used', async () => {
    fs.mkdirSync(path.join(tmp, 'checkpoints'));
    fs.writeFileSync(path.join(tmp, 'checkpoints', ENTRY.file), DATA);
    await expectRejects(
      resolvePretrained({ ...ENTRY, sha256: 'ef'.repeat(32) }, { cacheDir: tmp, env: {}, offline: true }),
      ZooError,
      /has sha256 .* delete .* to download it again/,
    );
    expect(fs.existsSync(path.join(tmp, NAME))).to.equal(false);
  });

  it('a slow server times out: DownloadError, no cache entry', async () => {
    await withServer({ [REL]: stallAfterStart }, async (srv) => {
      await expectRejects(resolvePretrained(NAME, { ...opts(srv), timeoutMs: 150 }), DownloadError, /no data for 150 ms/);
      expect(filesUnder(tmp)).to.deep.equal([]);
    });
  });

  it('progress: monotone download events ending at loaded === total, then convert', async () => {
    await withServer({ [REL]: sendFile(DATA, 8192) }, async (srv) => {
      const events: ZooProgress[] = [];
      await resolvePretrained(NAME, { ...opts(srv), onProgress: (p) => events.push(p) });
      const dl = events.filter((e): e is DownloadProgress => e.status === 'download');
      expectMonotoneProgress(dl, DATA.length);
      expect(dl[0].file).to.equal(ENTRY.file);
      expect(events.at(-1)).to.deep.equal({ status: 'convert', file: ENTRY.file, name: NAME });
    });
  });

  it('a real entry whose download is not that architecture: CheckpointError, download dropped', async () => {
    // The fixture served under the real convnext_tiny.fb_in1k path: arch checking must refuse it.
    await withServer({ '/convnext/convnext_tiny_1k_224_ema.pth': sendFile(DATA) }, async (srv) => {
      await expectRejects(resolvePretrained('convnext_tiny.fb_in1k', opts(srv)), CheckpointError, /--arch convnext_tiny/);
      expect(srv.requests).to.deep.equal(['/convnext/convnext_tiny_1k_224_ema.pth']);
      expect(filesUnder(tmp)).to.deep.equal([]);
    });
  });

  it('a head that does not match numClasses is refused', async () => {
    await withServer({ [REL]: sendFile(DATA) }, async (srv) => {
      await expectRejects(resolvePretrained({ ...ENTRY, numClasses: 1000 }, opts(srv)), ZooError, /10-class head, convnext_test\.fixture should have 1000/);
      expect(filesUnder(tmp)).to.deep.equal([]);
    });
  });

  it('a leftover model directory without model.json is replaced', async () => {
    fs.mkdirSync(path.join(tmp, 'checkpoints'));
    fs.copyFileSync(FIXTURE, path.join(tmp, 'checkpoints', ENTRY.file));
    fs.mkdirSync(path.join(tmp, NAME));
    fs.writeFileSync(path.join(tmp, NAME, 'weights-000000000000-shard1of1.bin'), 'junk');
    const r = await resolvePretrained(NAME, { cacheDir: tmp, env: {}, offline: true });
    expect(r).to.include({ downloaded: false, converted: true });
    expect(fs.readdirSync(r.dir).filter((f) => f.includes('000000000000'))).to.deep.equal([]);
    expect(fs.readdirSync(tmp).sort()).to.deep.equal(['checkpoints', NAME]);
    const { model } = await loadConvertedModel(r.dir);
    model.dispose();
  });

  it('concurrent resolves of one model leave one complete model and no stray files', async () => {
    await withServer({ [REL]: sendFile(DATA, 4096) }, async (srv) => {
      const rs = await Promise.all([resolvePretrained(NAME, opts(srv)), resolvePretrained(NAME, opts(srv)), resolvePretrained(NAME, opts(srv))]);
      expect(new Set(rs.map((r) => r.dir)).size).to.equal(1);
      expect(srv.requests.length).to.be.within(1, 3);
      const stray = filesUnder(tmp).filter((f) => /partial|staging|\.tmp/.test(f));
      expect(stray).to.deep.equal([]);
      expect(fs.readdirSync(tmp).sort()).to.deep.equal(['checkpoints', NAME]);
      const { model } = await loadConvertedModel(rs[0].dir);
      model.dispose();
    });
  });
});
