/**
 * Expands the CLI's image arguments: files as given, directories recursively (image extensions,
 * sorted), and glob patterns (`*`, `?`, `**`, `[...]`) resolved here, since Node 20 has no fs.glob
 * and a quoted pattern reaches us unexpanded.
 */
import * as fs from 'fs';
import { IMAGE_EXTENSIONS } from '../data/decode';
import { SkippedEntry, listFiles } from '../util/fs';
import { globToRegExp, hasGlob } from '../util/strings';

/**
 * Files for each argument, in order, without duplicates; arguments matching nothing are reported,
 * and so is what a directory walk left out (FIFOs, broken links, loops, other extensions), with why.
 */
export function expandImageArgs(args: string[]): { files: string[]; unmatched: string[]; skipped: SkippedEntry[] } {
  const files: string[] = [];
  const unmatched: string[] = [];
  const skipped: SkippedEntry[] = [];
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
        const found = listFiles(arg, IMAGE_EXTENSIONS, (e) => skipped.push(e));
        if (found.length === 0) unmatched.push(arg);
        found.forEach(add);
      } else add(arg); // a missing file is reported by the decoder, with its reason
      continue;
    }
    const parts = arg.split('/');
    const firstGlob = parts.findIndex(hasGlob);
    const base = parts.slice(0, firstGlob).join('/') || (arg.startsWith('/') ? '/' : '.');
    const re = globToRegExp(arg.replace(/^\.\//, ''));
    const inBase: SkippedEntry[] = [];
    const found = fs.existsSync(base) && fs.statSync(base).isDirectory() ? listFiles(base, IMAGE_EXTENSIONS, (e) => inBase.push(e)) : [];
    const matches = (f: string) => re.test(f.replace(/^\.\//, ''));
    const matched = found.filter(matches);
    skipped.push(...inBase.filter((e) => matches(e.path)));
    if (matched.length === 0) unmatched.push(arg);
    matched.forEach(add);
  }
  return { files, unmatched, skipped };
}
