/**
 * The browser build's `fs`: an in-memory file table, so the converter's readers (weights-converter/
 * zip.ts, torch.ts, safetensors.ts, read.ts: random access by file descriptor) run unchanged on the
 * bytes of a File or ArrayBuffer a page holds. Read-only: writing a file is not possible in a page
 * and throws. scripts/build-browser.js maps `fs` to this module; nothing else imports it.
 */
import { Buffer } from 'buffer';

const files = new Map<string, Uint8Array>();
const descriptors = new Map<number, Uint8Array>();
let nextFd = 3;

/** An error shaped like Node's (code, syscall, path), so callers' ENOENT checks read the same. */
function fsError(code: string, syscall: string, path: string, what: string): Error {
  return Object.assign(new Error(`${code}: ${what}, ${syscall} '${path}'`), { code, syscall, path });
}

/** Makes `bytes` readable as the file `path` (a virtual name; the bytes are not copied). */
export function putMemoryFile(path: string, bytes: Uint8Array): void {
  files.set(path, bytes);
}

/** Forgets the file `path` (open descriptors keep their bytes until closed). */
export function removeMemoryFile(path: string): void {
  files.delete(path);
}

function lookup(path: string, syscall: string): Uint8Array {
  const bytes = files.get(String(path));
  if (bytes === undefined) throw fsError('ENOENT', syscall, String(path), 'no such file or directory');
  return bytes;
}

function fdBytes(fd: number, syscall: string): Uint8Array {
  const bytes = descriptors.get(fd);
  if (bytes === undefined) throw fsError('EBADF', syscall, String(fd), 'bad file descriptor');
  return bytes;
}

/** Node's open flags the readers pass (openRegularFile: O_RDONLY | O_NONBLOCK); reading is all a page does. */
export const constants = { O_RDONLY: 0, O_NONBLOCK: 0 };

export function openSync(path: string, flags: string | number = 'r'): number {
  if (flags !== 'r' && flags !== constants.O_RDONLY) throw fsError('EROFS', 'open', path, 'the browser file table is read-only');
  const fd = nextFd++;
  descriptors.set(fd, lookup(path, 'open'));
  return fd;
}

export function closeSync(fd: number): void {
  fdBytes(fd, 'close');
  descriptors.delete(fd);
}

interface Stats {
  size: number;
  isFile(): boolean;
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
  isSymbolicLink(): boolean;
}

/** Every in-memory file is a regular file. */
function stats(size: number): Stats {
  const no = () => false;
  return { size, isFile: () => true, isDirectory: no, isFIFO: no, isCharacterDevice: no, isBlockDevice: no, isSocket: no, isSymbolicLink: no };
}

export function fstatSync(fd: number): Stats {
  return stats(fdBytes(fd, 'fstat').length);
}

export function statSync(path: string): Stats {
  return stats(lookup(path, 'stat').length);
}

/** The in-memory table has no links: lstat is stat. */
export const lstatSync = statSync;

export function existsSync(path: string): boolean {
  return files.has(String(path));
}

/** Node's positional read: copies at most `length` bytes from `position` into `buffer` at `offset`. */
export function readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number {
  const bytes = fdBytes(fd, 'read');
  const n = Math.max(0, Math.min(length, bytes.length - position));
  buffer.set(bytes.subarray(position, position + n), offset);
  return n;
}

export function readFileSync(path: string, encoding?: string | { encoding?: string }): Buffer | string {
  const bytes = lookup(path, 'open');
  const enc = typeof encoding === 'string' ? encoding : encoding?.encoding;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return enc ? buf.toString(enc as BufferEncoding) : buf;
}

function readOnly(syscall: string): (path?: unknown) => never {
  return (path?: unknown) => {
    throw fsError('EROFS', syscall, String(path), 'the browser file table is read-only');
  };
}

// Writers the Node code paths name; none is reached from the browser entry.
export const writeSync = readOnly('write');
export const writeFileSync = readOnly('write');
export const fsyncSync = readOnly('fsync');
export const renameSync = readOnly('rename');
export const rmSync = readOnly('rm');
export const unlinkSync = readOnly('unlink');
export const mkdirSync = readOnly('mkdir');
export const readdirSync = readOnly('scandir');
export const readlinkSync = readOnly('readlink');

export const promises = {
  readFile: async (path: string, encoding?: string): Promise<Buffer | string> => readFileSync(path, encoding),
};
