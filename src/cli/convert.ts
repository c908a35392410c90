/** `convnext convert <checkpoint> <out-dir> [--arch NAME] [--fp16]`: PyTorch checkpoint -> TF.js model dir. */
import { Command, Option } from 'commander';
import { convertCheckpoint } from '../../weights-converter/convert';
import { LAYOUTS, Layout } from '../../weights-converter/layouts';
import { writeModelDir } from '../io/model_dir';
import { countParams } from '../model/configs';

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('convert a PyTorch checkpoint (official, timm, torchvision or HF; .pth/.pt/.bin/.safetensors) to a TF.js model directory')
    .argument('<checkpoint>', 'checkpoint file')
    .argument('<out-dir>', 'output directory (model.json + weight shards)')
    .option('--arch <name>', 'architecture the checkpoint must be (e.g. convnext_tiny); inferred from shapes when omitted')
    .option('--fp16', 'store weights as float16 (half the size; parity within ~2e-3 relative)')
    .addOption(new Option('--layout <layout>', 'key layout (detected when omitted)').choices([...LAYOUTS]))
    .option('--wrapper <key>', "top-level key holding the state dict (e.g. model_ema); default: 'model', 'state_dict', ...")
    .option('--allow-nonfinite', 'accept weights holding NaN or Inf (refused by default)')
    .option('--json', 'print a JSON summary')
    .action(
      async (
        checkpoint: string,
        outDir: string,
        opts: { arch?: string; fp16?: boolean; layout?: Layout; wrapper?: string; allowNonfinite?: boolean; json?: boolean },
      ) => {
        const t0 = Date.now();
        const c = await convertCheckpoint(checkpoint, { arch: opts.arch, layout: opts.layout, wrapperKey: opts.wrapper });
        const modelJson = writeModelDir(outDir, c.weights, c.meta, { fp16: opts.fp16 });
        const summary = {
          model_json: modelJson,
          name: c.config.name,
          version: c.config.version,
          depths: c.config.depths,
          dims: c.config.dims,
          num_classes: c.config.numClasses,
          params: countParams(c.config),
          layout: c.meta.source?.layout,
          format: c.meta.source?.format,
          storage: opts.fp16 ? 'float16' : 'float32',
          seconds: +((Date.now() - t0) / 1000).toFixed(2),
        };
        if (opts.json) process.stdout.write(JSON.stringify(summary) + '\n');
        else
          process.stdout.write(
            `converted ${checkpoint} (${summary.layout} layout, ${summary.format}) -> ${modelJson}\n` +
              `  ${summary.name}: V${summary.version} depths [${summary.depths}] dims [${summary.dims}] ` +
              `${summary.num_classes} classes, ${summary.params.toLocaleString('en-US')} params, ${summary.storage}, ${summary.seconds}s\n`,
          );
      },
    );
}
