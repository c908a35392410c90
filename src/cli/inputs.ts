/**
 * Expands the CLI's image arguments: files as given, directories recursively (image extensions,
 * sorted), and glob patterns (`*`, `?`, `**`, `[...]`) resolved here, since Node 20 has no fs.glob
 * and a quoted pattern reaches us unexpanded.
 */
import * as fs from 'fs';
import { IMAGE_EXTENSIONS } from '../data/decode';
import { listFiles } from '../util/fs';
import { globToRegExp, hasGlob } from '../util/strings';

/** Files for each argument, in order, without duplicates; arguments matching nothing are reported. */
export function expandImageArgs(args: string[]): { files: string[]; unmatched: string[] } {
  const files: string[] = [];
  const unmatched: string[] = [];
  const seen = new Set<string>();
  const add = (f: string) => {
    if (!seen.has(f)) {
      seen.add(f);
      files.push(f);
    }
  };
  for (const arg of args) {
    if (!hasGlob(arg)) {
      if (fs.existsSync(arg) && fs.statSync(arg).isDirectory()) {
        const found = listFiles(arg, IMAGE_EXTENSIONS);
        if (found.length === 0) unmatched.push(arg);
        found.forEach(add);
      } else add(arg); // a missing file is reported by the decoder, with its reason
      continue;
    }
    const parts = arg.split('/');
    const firstGlob = parts.findIndex(hasGlob);
    const base = parts.slice(0, firstGlob).join('/') || (arg.startsWith('/') ? '/' : '.');
    const re = globToRegExp(arg.replace(/^\.\//, ''));
    const found = fs.existsSync(base) && fs.statSync(base).isDirectory() ? listFiles(base, IMAGE_EXTENSIONS) : [];
    const matched = found.filter((f) => re.test(f.replace(/^\.\//, '')));
    if (matched.length === 0) unmatched.push(arg);
    matched.forEach(add);
  }
  return { files, unmatched };
}
