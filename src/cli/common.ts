/** Pieces shared by CLI commands. */
import { Command } from 'commander';
import { BackendInfo, initBackend } from '../backend';

/** Initialises the backend from the global --backend and --threads flags (or $CONVNEXT_BACKEND, $CONVNEXT_THREADS). */
export async function withBackend(program: Command): Promise<BackendInfo> {
  const { backend, threads } = program.opts<{ backend?: string; threads?: number | 'auto' }>();
  return initBackend({ backend, threads });
}

/** Prints `value` to stdout: one JSON line with --json, else `text(value)` (without the final newline). */
export function printResult<T>(json: boolean | undefined, value: T, text: (v: T) => string): void {
  process.stdout.write((json ? JSON.stringify(value) : text(value)) + '\n');
}
