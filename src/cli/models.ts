/**
 * `convnext models [pattern] [--json]`: the registered architectures (timm's names, with parameter
 * counts and MACs) and the pretrained tags (input size, classes, parameters, licence), filtered by
 * a glob pattern as timm's list_models does.
 */
import { Command } from 'commander';
import { countMacs, countParams, listModels, resolveConfig } from '../model/configs';
import { getPretrained, listPretrained } from '../zoo/registry';
import { printResult } from './common';

export interface ModelsListing {
  architectures: { name: string; version: number; params: number; gmacs_224: number }[];
  pretrained: { name: string; arch: string; input_size: number; num_classes: number; params: number; license: string }[];
}

/** Architectures and pretrained tags matching `pattern` (a glob on either name, e.g. 'convnextv2_*', '*in22k*'). */
export function listModelsAndTags(pattern = '*'): ModelsListing {
  const architectures = listModels(pattern).map((name) => {
    const c = resolveConfig(name);
    return { name, version: c.version, params: countParams(c), gmacs_224: +(countMacs(c, 224, 224) / 1e9).toFixed(3) };
  });
  // A bare architecture pattern also lists its tags ('convnext_tiny' -> convnext_tiny.*).
  const tags = new Set([...listPretrained(pattern), ...(pattern.includes('.') ? [] : listPretrained(`${pattern}.*`))]);
  const pretrained = [...tags].map((name) => {
    const e = getPretrained(name);
    const arch = e.arch ?? name.split('.')[0];
    return {
      name,
      arch,
      input_size: e.preprocessing.inputSize,
      num_classes: e.numClasses,
      params: countParams(resolveConfig(arch, { numClasses: e.numClasses })),
      license: e.license,
    };
  });
  return { architectures, pretrained };
}

const millions = (n: number): string => `${(n / 1e6).toFixed(1)}M`;

export function registerModels(program: Command): void {
  program
    .command('models')
    .description('list architectures and pretrained tags (input size, classes, parameters, licence)')
    .argument('[pattern]', "glob on names, e.g. 'convnextv2_*' or '*in22k*' (quote it)", '*')
    .option('--json', 'print one JSON object: {"architectures": [...], "pretrained": [...]}')
    .action((pattern: string, opts: { json?: boolean }) => {
      const l = listModelsAndTags(pattern);
      if (!opts.json && !l.architectures.length && !l.pretrained.length) {
        process.stderr.write(`no architectures or pretrained tags match '${pattern}'\n`);
        process.exitCode = 1;
        return;
      }
      printResult(opts.json, l, formatModelList);
    });
}

/** `convnext models` as text: the architectures, then the pretrained tags, one a line. */
function formatModelList(l: ReturnType<typeof listModelsAndTags>): string {
  const out: string[] = [];
  if (l.architectures.length) {
    out.push(`architectures (${l.architectures.length}; random init, or --init weights):`);
    const w = Math.max(...l.architectures.map((a) => a.name.length));
    for (const a of l.architectures)
      out.push(`  ${a.name.padEnd(w)}  V${a.version}  ${millions(a.params).padStart(7)} params  ${a.gmacs_224.toFixed(2).padStart(7)} GMACs@224`);
  }
  if (l.pretrained.length) {
    out.push(`pretrained (${l.pretrained.length}; downloaded on first use):`);
    const w = Math.max(...l.pretrained.map((p) => p.name.length));
    for (const p of l.pretrained)
      out.push(
        `  ${p.name.padEnd(w)}  ${String(p.input_size).padStart(3)}px  ${String(p.num_classes).padStart(5)} classes  ${millions(p.params).padStart(7)} params  ${p.license}`,
      );
  }
  return out.join('\n');
}
