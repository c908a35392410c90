/** Pieces shared by CLI commands. */
import { Command } from 'commander';
import { BackendInfo, initBackend } from '../backend';

/** Initialises the backend from the global --backend flag (or $CONVNEXT_BACKEND). */
export async function withBackend(program: Command): Promise<BackendInfo> {
  const { backend } = program.opts<{ backend?: string }>();
  return initBackend({ backend });
}
