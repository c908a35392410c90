/**
 * The `convnext` command line. Thin: it parses flags, calls the library and prints. User errors
 * (ConvNeXtError and its kin) print `error: <message>` and exit 1, without a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { releaseWebGpu } from '../backend/webgpu';
import { ConvNeXtError } from '../errors';
import { registerBench } from './bench';
import { registerConvert } from './convert';
import { registerExport } from './export';
import { registerForward } from './forward';
import { registerInfo } from './info';
import { registerMerge } from './merge';
import { registerModels } from './models';
import { registerPredict } from './predict';
import { countOrAuto } from './options';
import { registerPreprocess } from './preprocess';
import { registerPretrain } from './pretrain';
import { registerReconstruct } from './reconstruct';
import { registerTrain } from './train';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('convnext')
    .description('ConvNeXt V1/V2 on TensorFlow.js: model info, conversion, inference')
    .version(require('../../../package.json').version as string)
    .showHelpAfterError('(run with --help for usage)')
    .option('--backend <name>', 'TF.js backend: auto | node-gpu | webgpu | node | wasm | cpu (default: $CONVNEXT_BACKEND or auto)')
    .option(
      '--threads <n>',
      "wasm threads for one model: 'auto' (every core: lowest latency, more memory) or a count (default: $CONVNEXT_THREADS or 1)",
      countOrAuto,
    )
    .exitOverride();
  registerModels(program);
  registerInfo(program);
  registerConvert(program);
  registerExport(program);
  registerForward(program);
  registerPredict(program);
  registerMerge(program);
  registerPreprocess(program);
  registerTrain(program);
  registerPretrain(program);
  registerReconstruct(program);
  registerBench(program);
  return program;
}

/**
 * Errors a user can cause by input (ours, and file-system errors such as a missing output
 * directory): printed as one line. Anything else is a bug and keeps its stack.
 */
export function isUserError(e: unknown): boolean {
  if (e instanceof ConvNeXtError) return true;
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) && typeof (e as NodeJS.ErrnoException).syscall === 'string';
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed the message (or help/version, which exit 0).
      return e.exitCode;
    }
    if (isUserError(e)) {
      process.stderr.write(`error: ${(e as Error).message}\n`);
      return 1;
    }
    throw e;
  } finally {
    // Dawn's instance must not outlive the command (a held GPU handle can keep Node running).
    releaseWebGpu();
  }
}
