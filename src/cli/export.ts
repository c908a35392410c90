/**
 * `convnext export <model> <out-file> --layout timm|hf|official|torchvision [--fp16]`: one of our
 * models (zoo name, converted dir, training run dir, or a PyTorch checkpoint) -> a PyTorch
 * checkpoint in that layout (weights-converter/export.ts). Thin: resolves the model, calls
 * exportModel, prints what it wrote.
 */
import { Command, Option } from 'commander';
import { EXPORT_EXTENSIONS, exportModel } from '../../weights-converter/export';
import { LAYOUTS, Layout } from '../../weights-converter/layouts';
import { fcmaeFromRun, readPretrainCheckpoint } from '../fcmae/pretrain';
import { writeFcmaeCheckpoint } from '../fcmae/torch_writer';
import { loadModel } from '../factory/load';
import * as fs from 'fs';
import * as path from 'path';
import { withBackend } from './common';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('export a model to a PyTorch checkpoint: timm / hf (.safetensors, HF + config.json) or official / torchvision (.pth)')
    .argument(
      '<model>',
      'zoo name, converted model dir, training run dir (its model/), pretraining run dir (its encoder/; --layout fcmae: the whole FCMAE), or a PyTorch checkpoint',
    )
    .argument('<out-file>', `output file (${LAYOUTS.map((l) => `${l}: ${EXPORT_EXTENSIONS[l]}`).join(', ')}); hf: a directory also works`)
    .addOption(
      new Option('--layout <layout>', "target key layout ('fcmae': a pretraining run's encoder + decoder as FB2's pretraining checkpoint)")
        .choices([...LAYOUTS, 'fcmae'])
        .makeOptionMandatory(),
    )
    .option('--fp16', 'store float16 weights')
    .option('--cache-dir <dir>', 'zoo cache (default $CONVNEXT_CACHE or ~/.cache/convnext-tfjs)')
    .option('--offline', 'never touch the network (zoo models must be cached)')
    .option('--json', 'print a JSON summary')
    .action(async (source: string, outFile: string, o: { layout: Layout | 'fcmae'; fp16?: boolean; cacheDir?: string; offline?: boolean; json?: boolean }) => {
      await withBackend(program);
      if (o.layout === 'fcmae') {
        await exportFcmae(source, outFile, !!o.json);
        return;
      }
      const layout = o.layout;
      const { model, meta } = await loadModel(source, { cacheDir: o.cacheDir, offline: o.offline });
      try {
        const r = exportModel(model, outFile, { layout, fp16: o.fp16, labels: meta.labels });
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

/** A pretraining run (or its checkpoint.safetensors) -> FB2's pretraining checkpoint {'model', 'epoch', 'args'}. */
async function exportFcmae(source: string, outFile: string, json: boolean): Promise<void> {
  const file = fs.existsSync(source) && fs.statSync(source).isDirectory() ? path.join(source, 'checkpoint.safetensors') : source;
  const { meta } = readPretrainCheckpoint(file);
  const f = fcmaeFromRun(file);
  try {
    const args = { model: meta.config.name, decoder_embed_dim: meta.decoderDim, decoder_depth: meta.decoderDepth };
    await writeFcmaeCheckpoint(outFile, f, { epoch: meta.epoch, args });
    const summary = { layout: 'fcmae', files: [outFile], name: meta.config.name, epoch: meta.epoch, keys: f.parameters().size };
    process.stdout.write(
      json ? JSON.stringify(summary) + '\n' : `exported the FCMAE of ${summary.name} (epoch ${meta.epoch}) in FB2's pretraining layout -> ${outFile}\n`,
    );
  } finally {
    f.dispose();
  }
}
