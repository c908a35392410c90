/**
 * File-system helpers every writer and reader of the package uses, so each guarantee is written once:
 *
 * - atomic writes: the data goes to a temp file in the target's directory, is fsynced, and renamed
 *   over the target; on any failure the temp file is removed and the target is untouched. A reader
 *   never sees a half-written file, and a crash leaves at most a `.name.<pid>.<rand>.tmp` beside it,
 *   which `removeStaleTemps` clears on the next run.
 * - directory walks: sorted (localeCompare), recursive, regular files with the given extensions,
 *   links followed with loop detection, and whatever is left out reported with the reason;
 * - reading input files: regular files only (FIFOs and devices refused by name), capped at their size.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/** A temp-file name beside `file`: `.<base>.<pid>.<rand>.tmp` (same directory, so rename is atomic). */
export function tempPathFor(file: string): string {
  const abs = path.resolve(file);
  return path.join(path.dirname(abs), `.${path.basename(abs)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
}

/** Content, or a function that writes it through a file descriptor (for large, streamed writes). */
export type AtomicContent = string | Uint8Array | ((fd: number) => void);

/**
 * Writes `content` to `file` atomically (temp file in the same directory, fsync, rename; the temp file
 * is removed on failure). Throws the underlying fs error, whose message names the path.
 */
export function writeFileAtomic(file: string, content: AtomicContent): void {
  const tmp = tempPathFor(file);
  let fd: number | null = fs.openSync(tmp, 'wx');
  try {
    if (typeof content === 'function') content(fd);
    else fs.writeSync(fd, typeof content === 'string' ? Buffer.from(content) : content);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== null) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Async form for streamed writes (downloads): `write` gets an open handle to the temp file and may
 * throw to abandon it; on success the file is fsynced and renamed over `file`.
 */
export async function writeFileAtomicAsync(file: string, write: (fh: fs.promises.FileHandle) => Promise<void>, tmp = tempPathFor(file)): Promise<void> {
  let fh: fs.promises.FileHandle | null = await fs.promises.open(tmp, 'wx');
  try {
    await write(fh);
    await fh.sync();
    await fh.close();
    fh = null;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fh !== null) await fh.close().catch(() => undefined);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temp files `tempPathFor(file)` left beside `file` by processes that no longer run. */
export function removeStaleTemps(file: string): string[] {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  const re = new RegExp(`^\\.${path.basename(abs).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)\\.[0-9a-f]+\\.tmp$`);
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  for (const n of names) {
    const m = re.exec(n);
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) {
      fs.rmSync(path.join(dir, n), { force: true });
      removed.push(path.join(dir, n));
    }
  }
  return removed;
}

/** Why a directory entry was not listed: the path and a plain reason. */
export interface SkippedEntry {
  path: string;
  reason: string;
  /** 'extension': a regular file without a wanted extension (callers may summarise these); 'special': FIFO, socket, device; 'link': broken link or link loop. */
  kind: 'extension' | 'special' | 'link';
}

/** What a non-regular file is, in words ('FIFO (named pipe)', 'character device', ...). */
export function fileKind(st: fs.Stats): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO (named pipe)';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isSymbolicLink()) return 'symbolic link';
  return 'special file';
}

/**
 * Regular files under `dir` (recursive, sorted by name at each level) whose extension is in
 * `extensions`. Symbolic links are followed, to files and to directories; a directory reached a
 * second time (a link loop, or two links to one folder) is not walked again. Whatever is left out
 * other than subdirectories (FIFOs, sockets, devices, broken links, loops, other extensions) is
 * reported to `onSkip` with the reason.
 */
export function listFiles(dir: string, extensions: readonly string[], onSkip?: (s: SkippedEntry) => void): string[] {
  const out: string[] = [];
  const skip = (p: string, kind: SkippedEntry['kind'], reason: string): void => onSkip?.({ path: p, kind, reason });
  // Directories by device:inode: the ones being walked (a link back to one is a loop) and all seen.
  const seen = new Map<string, string>();
  const walking = new Set<string>();
  const walk = (d: string, st: fs.Stats) => {
    const id = `${st.dev}:${st.ino}`;
    if (walking.has(id)) return skip(d, 'link', `symbolic link loop (leads back to ${seen.get(id)})`);
    if (seen.has(id)) return skip(d, 'link', `same directory as ${seen.get(id)}, already listed`);
    seen.set(id, d);
    walking.add(id);
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      let target: fs.Stats;
      try {
        target = e.isSymbolicLink() ? fs.statSync(p) : fs.lstatSync(p);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ELOOP') skip(p, 'link', 'symbolic link loop');
        else if (code === 'ENOENT') skip(p, 'link', `broken symbolic link (to ${safeReadlink(p)})`);
        else skip(p, 'special', `cannot stat (${code ?? (err as Error).message})`);
        continue;
      }
      if (target.isDirectory()) walk(p, target);
      else if (!extensions.includes(path.extname(e.name).toLowerCase())) skip(p, 'extension', 'not an image file extension');
      else if (target.isFile()) out.push(p);
      else skip(p, 'special', `not a regular file (${fileKind(target)})`);
    }
    walking.delete(id);
  };
  walk(dir, fs.statSync(dir));
  return out;
}

function safeReadlink(p: string): string {
  try {
    return fs.readlinkSync(p);
  } catch {
    return '?';
  }
}

/**
 * A file that could not be read as a regular file; `reason` is plain ("is a FIFO (named pipe), not
 * a regular file"). A plain Error (src/util sits below src/errors): callers turn it into their own
 * typed error (decodeImage: ImageError).
 */
export class FileReadError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
    readonly code?: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'FileReadError';
  }
}

/**
 * Reads a regular file whole, and nothing else: the file is opened non-blocking (a FIFO cannot
 * hang the open) and checked with fstat on the open descriptor (no race with a swapped path), so
 * FIFOs, sockets and devices such as /dev/zero are refused by name, before a byte is read. At most
 * the size fstat reported is read (a file growing meanwhile cannot grow the buffer), and at most
 * `maxBytes` when given.
 */
export async function readRegularFile(file: string, maxBytes = Infinity): Promise<Buffer> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new FileReadError(file, errnoReason(e), (e as NodeJS.ErrnoException).code);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new FileReadError(file, 'is a directory, not a file', 'EISDIR');
    if (!st.isFile()) throw new FileReadError(file, `is a ${fileKind(st)}, not a regular file`, 'ENOTREG');
    if (st.size > maxBytes) throw new FileReadError(file, `is ${st.size} bytes, over the limit of ${maxBytes}`, 'EFBIG');
    const buf = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < st.size) {
      const { bytesRead } = await fh.read(buf, off, st.size - off, off);
      if (bytesRead === 0) break; // shrank meanwhile
      off += bytesRead;
    }
    return off === st.size ? buf : buf.subarray(0, off);
  } catch (e) {
    if (e instanceof FileReadError) throw e;
    throw new FileReadError(file, errnoReason(e), (e as NodeJS.ErrnoException).code);
  } finally {
    await fh.close();
  }
}

/** A file-system error in plain words. */
function errnoReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a directory, not a file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ELOOP') return 'symbolic link loop';
  if (code === 'ENXIO') return 'is a socket or a device without a reader, not a regular file';
  return `cannot read (${(e as Error).message})`;
}
