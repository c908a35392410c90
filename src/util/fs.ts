/**
 * File-system helpers every writer and reader of the package uses, so each guarantee is written once:
 *
 * - atomic writes: the data goes to a temp file in the target's directory, is fsynced, and renamed
 *   over the target; on any failure the temp file is removed and the target is untouched. A reader
 *   never sees a half-written file, and a crash leaves at most a `.name.<pid>.<rand>.tmp` beside it,
 *   which `removeStaleTemps` clears on the next run.
 * - directory walks: sorted (localeCompare), recursive, regular files with the given extensions.
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

/** Regular files under `dir` (recursive, sorted by name at each level) whose extension is in `extensions`. */
export function listFiles(dir: string, extensions: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && extensions.includes(path.extname(e.name).toLowerCase())) out.push(p);
    }
  };
  walk(dir);
  return out;
}
