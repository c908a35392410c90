/**
 * Output paths checked before any work: a command that computes for minutes must not fail at the
 * final write because the path was empty, a directory, or in a directory that does not exist.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ConvNeXtError } from '../errors';

/**
 * Checks, before any work, that `file` can be written as an output: a non-empty path that is not a
 * directory, in an existing, writable directory. Throws ConvNeXtError naming `option` (e.g.
 * '--output') and the problem; a long computation never ends at a rename that was bound to fail.
 */
export function checkOutputFile(file: unknown, option = 'output'): string {
  if (typeof file !== 'string' || file.trim() === '') throw new ConvNeXtError(`${option} must be a file path, got ${JSON.stringify(file)}`);
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(abs);
  } catch {
    // does not exist yet: fine
  }
  if (st?.isDirectory() || /[\\/]$/.test(file)) throw new ConvNeXtError(`${option} ${file}: is a directory, not a file path`);
  let dst: fs.Stats;
  try {
    dst = fs.statSync(dir);
  } catch {
    throw new ConvNeXtError(`${option} ${file}: its directory ${dir} does not exist`);
  }
  if (!dst.isDirectory()) throw new ConvNeXtError(`${option} ${file}: ${dir} is not a directory`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new ConvNeXtError(`${option} ${file}: its directory ${dir} is not writable`);
  }
  return file;
}
