/** `convnext info <name> [--json]`: architecture, parameter count and MACs at 224. */
import { Command } from 'commander';
import { countMacs, countParams, featureInfo, resolveConfig } from '../model/configs';

export function modelInfo(name: string): Record<string, unknown> {
  const c = resolveConfig(name);
  const macs = countMacs(c, 224, 224);
  return {
    name: c.name,
    version: c.version,
    depths: c.depths,
    dims: c.dims,
    num_classes: c.numClasses,
    params: countParams(c),
    gmacs_224: +(macs / 1e9).toFixed(3),
    gflops_224: +((2 * macs) / 1e9).toFixed(3),
    layer_scale_init: c.layerScaleInit,
    grn: c.useGrn,
    ln_eps: c.lnEps,
    feature_info: featureInfo(c),
  };
}

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('show a model architecture: depths, dims, parameter count, MACs at 224x224')
    .argument('<name>', 'registered model name, e.g. convnext_tiny, convnextv2_atto')
    .option('--json', 'print one JSON object')
    .action((name: string, opts: { json?: boolean }) => {
      const info = modelInfo(name);
      if (opts.json) {
        process.stdout.write(JSON.stringify(info) + '\n');
        return;
      }
      const fi = info.feature_info as ReturnType<typeof featureInfo>;
      const lines = [
        `${info.name}  (ConvNeXt V${info.version})`,
        `  depths       ${(info.depths as number[]).join(', ')}`,
        `  dims         ${(info.dims as number[]).join(', ')}`,
        `  classes      ${info.num_classes}`,
        `  params       ${(info.params as number).toLocaleString('en-US')}`,
        `  GMACs @224   ${info.gmacs_224}  (convs + linears; papers' "FLOPs")`,
        `  layer scale  ${info.layer_scale_init ?? 'none'}    GRN ${info.grn ? 'yes' : 'no'}`,
        `  features     ${fi.map((f) => `stage${f.stage}: ${f.numChs}ch /${f.reduction}`).join('  ')}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
