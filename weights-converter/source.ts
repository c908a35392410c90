/**
 * Opening and reading checkpoint files: the one open-or-throw of every reader (zip, safetensors,
 * torch legacy, format detection) and exact positional reads. A checkpoint must be a regular file:
 * a FIFO would block the open (or the first read) forever, a device such as /dev/zero never ends,
 * and a directory has no bytes; each is refused by name before a byte is read.
 */
import * as fs from 'fs';
import { fileKind } from '../src/util/fs';
import { CheckpointError } from './errors';

/** Builds the error thrown for `file` (CheckpointError by default). */
export type FileErrorFactory = (file: string, reason: string) => Error;

const checkpointError: FileErrorFactory = (file, reason) => new CheckpointError(file, reason);

/** An open regular file. `close()` is safe to call twice. */
export interface RegularFile {
  readonly fd: number;
  /** Size in bytes when opened. */
  readonly size: number;
  close(): void;
}

/**
 * Open `file` for reading and require a regular file. `what` names what the file should be, for
 * the message (e.g. 'a checkpoint'): "<what> must be a regular file, but this is a FIFO (named
 * pipe)". A file that cannot be opened gives "cannot open: <system message>".
 *
 * The path is checked before opening (so a FIFO is never opened), and the descriptor after (so a
 * path swapped in between is still caught); O_NONBLOCK keeps even that open from blocking.
 */
export function openRegularFile(file: string, what: string, makeError: FileErrorFactory = checkpointError): RegularFile {
  const refuse = (st: fs.Stats): Error => makeError(file, `${what} must be a regular file, but this is a ${fileKind(st)}`);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw makeError(file, `cannot open: ${(e as Error).message}`);
  }
  if (!st.isFile()) throw refuse(st);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw makeError(file, `cannot open: ${(e as Error).message}`);
  }
  let size: number;
  try {
    const now = fs.fstatSync(fd);
    if (!now.isFile()) throw refuse(now);
    size = now.size;
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  let open = true;
  return {
    fd,
    size,
    close: () => {
      if (open) {
        open = false;
        fs.closeSync(fd);
      }
    },
  };
}

/** Read exactly `length` bytes at `position`, or throw a CheckpointError. */
export function readExactly(fd: number, position: number, length: number, file: string, what: string): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, done, Math.min(length - done, 0x40000000), position + done);
    } catch (e) {
      throw new CheckpointError(file, `read error in ${what}: ${(e as Error).message}`);
    }
    if (n <= 0) throw new CheckpointError(file, `truncated ${what}: file ends at byte ${position + done}`);
    done += n;
  }
  return buf;
}
