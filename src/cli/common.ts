/** Pieces shared by CLI commands. */
import { Command } from 'commander';
import { BackendInfo, initBackend } from '../backend';

/** Initialises the backend from the global --backend and --threads flags (or $CONVNEXT_BACKEND, $CONVNEXT_THREADS). */
export async function withBackend(program: Command): Promise<BackendInfo> {
  const { backend, threads } = program.opts<{ backend?: string; threads?: number | 'auto' }>();
  return initBackend({ backend, threads });
}
