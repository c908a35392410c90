/** What the bench/ scripts share: their --name value flags, a median, printing a report (also to a file), and assembling WebAssembly text. */
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

interface Wabt {
  parseWat(name: string, text: string, features: object): { toBinary(options: object): { buffer: Uint8Array } };
}

/** WebAssembly text to a binary, by wabt: a devDependency (scripts/build-wasm.js), as benchmarks run from the checkout. */
export async function watBinary(name: string, text: string, features: Record<string, boolean>): Promise<Uint8Array> {
  const wabt = await (require('wabt') as () => Promise<Wabt>)();
  return wabt.parseWat(name, text, features).toBinary({}).buffer;
}
