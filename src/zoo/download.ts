/**
 * One verified, atomic file download (what timm's download_url_to_file / torch.hub does): stream the
 * body to `<dest>.partial-<pid>-<rand>` beside dest while hashing it (SHA-256), check the byte count
 * against Content-Length and the expected size, and the hash against the expected one, then rename
 * to dest. Any failure removes the partial file, so dest is either absent or complete and verified.
 * Redirects are followed (fetch's default). Silent: progress goes through the callback only.
 *
 *   await download(entry.url, '/cache/checkpoints/convnext_tiny_1k_224_ema.pth', { onProgress: (p) => bar.update(p.loaded) });
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { DownloadError } from '../errors';

/** Progress of one download. `total` is the expected size (Content-Length or expectedSize), when known. */
export interface DownloadProgress {
  status: 'download';
  /** File name being written (dest's base name). */
  file: string;
  /** Bytes received so far. */
  loaded: number;
  total?: number;
}

export interface DownloadOptions {
  /** Exact size the file must have. */
  expectedSize?: number;
  /** Hex SHA-256 the file must have. */
  sha256?: string;
  /** Called at the start and after every received chunk (loaded is monotone; the last call has loaded === total). */
  onProgress?: (p: DownloadProgress) => void;
  /** Fail when no data arrives for this long, headers included (default 30 s). */
  timeoutMs?: number;
  /** Cancels the download. */
  signal?: AbortSignal;
  /** fetch to use (default: the global fetch). */
  fetchImpl?: typeof fetch;
}

export interface DownloadResult {
  /** Final path (dest). */
  path: string;
  bytes: number;
  /** Hex SHA-256 of the file. */
  sha256: string;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Downloads `url` to `dest` (parent directories are created), verifying as described above.
 * @throws DownloadError; dest is never left partial
 */
export async function download(url: string, dest: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const fetchImpl = opts.fetchImpl ?? globalThis.fetch;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const file = path.basename(dest);
  const fail = (why: string, status?: number): never => {
    throw new DownloadError(`download of ${url} failed: ${why}`, url, status);
  };

  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const partial = `${dest}.partial-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;

  // One controller aborts the request on idle timeout or on the caller's signal.
  const controller = new AbortController();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    timer.unref();
  };
  const onCallerAbort = () => controller.abort();
  opts.signal?.addEventListener('abort', onCallerAbort, { once: true });
  if (opts.signal?.aborted) controller.abort();

  let fh: fs.promises.FileHandle | undefined;
  let loaded = 0;
  let total: number | undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const why = (e: unknown): string => {
    if (timedOut) return `no data for ${timeoutMs} ms (timed out after ${loaded}${total !== undefined ? ` of ${total}` : ''} bytes)`;
    if (opts.signal?.aborted) return 'aborted';
    const err = e as Error & { cause?: Error & { code?: string } };
    const detail = [err.message, err.cause?.code ?? err.cause?.message].filter(Boolean).join(': ');
    return detail;
  };
  try {
    arm();
    let res: Response;
    try {
      // identity: Content-Length then counts the bytes we write (fetch would otherwise decode gzip).
      res = await fetchImpl(url, { signal: controller.signal, redirect: 'follow', headers: { 'accept-encoding': 'identity' } });
    } catch (e) {
      return fail(why(e));
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      return fail(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${res.url && res.url !== url ? ` (from ${res.url})` : ''}`, res.status);
    }
    const encoding = (res.headers.get('content-encoding') ?? 'identity').toLowerCase();
    const lengthHeader = res.headers.get('content-length');
    const contentLength = lengthHeader !== null && encoding === 'identity' && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
    if (contentLength !== undefined && opts.expectedSize !== undefined && contentLength !== opts.expectedSize) {
      await res.body?.cancel().catch(() => undefined);
      return fail(`size mismatch: the server sends ${contentLength} bytes, expected ${opts.expectedSize}`);
    }
    total = contentLength ?? opts.expectedSize;
    if (!res.body) return fail('response has no body');

    fh = await fs.promises.open(partial, 'w');
    const hash = crypto.createHash('sha256');
    opts.onProgress?.({ status: 'download', file, loaded, total });
    reader = res.body.getReader();
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (timedOut || opts.signal?.aborted) return fail(why(e));
        return fail(`connection closed after ${loaded} of ${total ?? 'unknown'} bytes (${why(e)})`);
      }
      if (chunk.done) break;
      arm();
      const buf = chunk.value;
      hash.update(buf);
      for (let off = 0; off < buf.byteLength;) off += (await fh.write(buf, off, buf.byteLength - off)).bytesWritten;
      loaded += buf.byteLength;
      if (total !== undefined && loaded > total) return fail(`received more than the ${total} bytes expected`);
      opts.onProgress?.({ status: 'download', file, loaded, total });
    }
    clearTimeout(timer);
    if (contentLength !== undefined && loaded !== contentLength) return fail(`connection closed after ${loaded} of ${contentLength} bytes`);
    if (opts.expectedSize !== undefined && loaded !== opts.expectedSize) return fail(`size mismatch: received ${loaded} bytes, expected ${opts.expectedSize}`);
    const digest = hash.digest('hex');
    if (opts.sha256 !== undefined && digest !== opts.sha256.toLowerCase()) return fail(`sha256 mismatch: got ${digest}, expected ${opts.sha256.toLowerCase()}`);
    await fh.sync();
    await fh.close();
    fh = undefined;
    try {
      fs.renameSync(partial, dest);
    } catch (e) {
      return fail(`cannot move the download into place at ${dest}: ${(e as Error).message}`);
    }
    return { path: dest, bytes: loaded, sha256: digest };
  } catch (e) {
    if (e instanceof DownloadError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new DownloadError(`download of ${url} failed: cannot write ${partial}: ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' '), url);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onCallerAbort);
    if (reader) await reader.cancel().catch(() => undefined);
    if (fh) await fh.close().catch(() => undefined);
    fs.rmSync(partial, { force: true });
  }
}
