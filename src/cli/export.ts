/**
 * `convnext export <model> <out-file> --layout timm|hf|official|torchvision [--fp16]`: one of our
 * models (zoo name, converted dir, training run dir, or a PyTorch checkpoint) -> a PyTorch
 * checkpoint in that layout (weights-converter/export.ts). Thin: resolves the model, calls
 * exportModel, prints what it wrote.
 */
import { Command, Option } from 'commander';
import { EXPORT_EXTENSIONS, exportModel } from '../../weights-converter/export';
import { LAYOUTS, Layout } from '../../weights-converter/layouts';
import { loadModel } from '../factory/load';
import { withBackend } from './common';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('export a model to a PyTorch checkpoint: timm / hf (.safetensors, HF + config.json) or official / torchvision (.pth)')
    .argument('<model>', 'zoo name, converted model dir, training run dir (its model/), or a PyTorch checkpoint')
    .argument('<out-file>', `output file (${LAYOUTS.map((l) => `${l}: ${EXPORT_EXTENSIONS[l]}`).join(', ')}); hf: a directory also works`)
    .addOption(new Option('--layout <layout>', 'target key layout').choices([...LAYOUTS]).makeOptionMandatory())
    .option('--fp16', 'store float16 weights')
    .option('--cache-dir <dir>', 'zoo cache (default $CONVNEXT_CACHE or ~/.cache/convnext-tfjs)')
    .option('--offline', 'never touch the network (zoo models must be cached)')
    .option('--json', 'print a JSON summary')
    .action(async (source: string, outFile: string, o: { layout: Layout; fp16?: boolean; cacheDir?: string; offline?: boolean; json?: boolean }) => {
      await withBackend(program);
      const { model, meta } = await loadModel(source, { cacheDir: o.cacheDir, offline: o.offline });
      try {
        const r = exportModel(model, outFile, { layout: o.layout, fp16: o.fp16, labels: meta.labels });
        r.warnings.forEach((w) => process.stderr.write(`warning: ${w}\n`));
        const summary = { ...r, name: model.config.name, num_classes: model.config.numClasses, storage: o.fp16 ? 'float16' : 'float32' };
        if (o.json) process.stdout.write(JSON.stringify(summary) + '\n');
        else
          process.stdout.write(
            `exported ${summary.name} (${summary.num_classes} classes, ${r.keys} tensors, ${summary.storage}) in the ${r.layout} layout -> ${r.files.join(', ')}\n`,
          );
      } finally {
        model.dispose();
      }
    });
}
