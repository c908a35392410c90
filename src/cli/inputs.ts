/**
 * Expands the CLI's image arguments: files as given, directories recursively (image extensions,
 * sorted), and glob patterns (`*`, `?`, `**`, `[...]`) resolved here, since Node 20 has no fs.glob
 * and a quoted pattern reaches us unexpanded.
 */
import * as fs from 'fs';
import * as path from 'path';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.bmp', '.gif', '.tif', '.tiff'];

function isImageFile(f: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase());
}

function walk(dir: string, out: string[]): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile() && isImageFile(e.name)) out.push(p);
  }
}

/** Glob pattern -> RegExp over '/'-separated paths. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        re += pattern[i + 2] === '/' ? '(?:.*/)?' : '.*';
        i += pattern[i + 2] === '/' ? 2 : 1;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function hasGlob(s: string): boolean {
  return /[*?[]/.test(s);
}

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
        const found: string[] = [];
        walk(arg, found);
        if (found.length === 0) unmatched.push(arg);
        found.forEach(add);
      } else add(arg); // a missing file is reported by the decoder, with its reason
      continue;
    }
    const parts = arg.split('/');
    const firstGlob = parts.findIndex(hasGlob);
    const base = parts.slice(0, firstGlob).join('/') || (arg.startsWith('/') ? '/' : '.');
    const re = globToRegExp(arg.replace(/^\.\//, ''));
    const found: string[] = [];
    if (fs.existsSync(base) && fs.statSync(base).isDirectory()) walk(base, found);
    const matched = found.filter((f) => re.test(f.replace(/^\.\//, '')));
    if (matched.length === 0) unmatched.push(arg);
    matched.forEach(add);
  }
  return { files, unmatched };
}
