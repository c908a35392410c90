/** What the bench/ scripts share: their --name value flags, a median, and printing a report (also to a file). */
import { writeFileAtomic } from '../src/util/fs';

/** The value after `--name` on the command line, else `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

/** The upper median (the middle element; the upper one of the two for an even count). */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Prints `text`, and writes it to `file` too when one is given (--md). */
export function report(text: string, file: string): void {
  process.stdout.write(text);
  if (file) writeFileAtomic(file, text);
}
