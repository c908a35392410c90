/**
 * `convnext info <name | tag | model dir> [--json]`: architecture, parameter count and MACs at 224;
 * for a pretrained tag also its checkpoint, input size, preprocessing and licence; for a converted
 * model directory what its model.json records (source, classes, preprocessing, storage).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Command } from 'commander';
import { ConfigError } from '../errors';
import { parseMeta } from '../io/model_dir';
import { ConvNeXtConfig, countMacs, countParams, featureInfo, listModels, resolveConfig } from '../model/configs';
import { getPretrained, isZooName, listPretrained } from '../zoo/registry';
import { editDistance } from '../util/strings';
import { printResult } from './common';

export function modelInfo(name: string | ConvNeXtConfig): Record<string, unknown> {
  const c = typeof name === 'string' ? resolveConfig(name) : name;
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

/** Up to 5 architecture names and tags near `name`, for an unknown one. */
function nearNames(name: string): string[] {
  return [...listModels(), ...listPretrained()]
    .map((n) => ({ n, d: Math.min(editDistance(n, name), editDistance(n.split('.')[0], name)) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(name.length / 5)))
    .sort((a, b) => a.d - b.d)
    .slice(0, 5)
    .map((x) => x.n);
}

/**
 * Information about an architecture name, a pretrained tag (arch.tag) or a converted model
 * directory (or its model.json); nothing is downloaded or loaded.
 */
export function describeModel(source: string): Record<string, unknown> {
  if (isZooName(source)) {
    const e = getPretrained(source);
    const c = resolveConfig(e.arch ?? source.split('.')[0], { numClasses: e.numClasses });
    const p = e.preprocessing;
    return {
      ...modelInfo(c),
      tag: e.name,
      pretrained: {
        url: e.url,
        input_size: p.inputSize,
        crop_pct: p.cropPct,
        crop_mode: p.cropMode ?? 'center',
        interpolation: p.interpolation,
        license: e.license,
        size_bytes: e.sizeBytes,
      },
    };
  }
  const json = source.endsWith('.json') ? source : path.join(source, 'model.json');
  if (fs.existsSync(json)) {
    const meta = parseMeta(JSON.parse(fs.readFileSync(json, 'utf8')), json);
    const p = meta.preprocessing;
    return {
      ...modelInfo(meta.config),
      dir: path.dirname(json),
      source: meta.source ?? null,
      labels: meta.labels ? meta.labels.length : 0,
      storage: meta.storage ?? 'float32',
      preprocessing: p ? { input_size: p.inputSize, crop_pct: p.cropPct, crop_mode: p.cropMode ?? 'center', interpolation: p.interpolation } : null,
    };
  }
  try {
    return modelInfo(source);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const near = nearNames(source);
    throw new ConfigError(
      `unknown model '${source}'` +
        (near.length ? ` (did you mean ${near.join(', ')}?)` : '') +
        ': not an architecture, a pretrained tag or a model directory; `convnext models` lists them',
    );
  }
}

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description(
      'show a model: depths, dims, parameter count, MACs at 224x224; for a pretrained tag its checkpoint, input size and licence; for a model directory what it records',
    )
    .argument('<name>', 'architecture (convnext_tiny), pretrained tag (convnext_tiny.fb_in1k) or converted model directory')
    .option('--json', 'print one JSON object')
    .action((name: string, opts: { json?: boolean }) => printResult(opts.json, describeModel(name), formatInfo));
}

/** `convnext info` as text: one line a property. */
function formatInfo(info: Record<string, unknown>): string {
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
  const pre = info.pretrained as { url: string; input_size: number; crop_pct: number; crop_mode: string; license: string } | undefined;
  if (pre) {
    lines.splice(1, 0, `  tag          ${info.tag}`);
    lines.push(
      `  input        ${pre.input_size}x${pre.input_size} (crop_pct ${pre.crop_pct}, ${pre.crop_mode})`,
      `  licence      ${pre.license}`,
      `  checkpoint   ${pre.url}`,
    );
  }
  if (info.dir !== undefined) {
    const src = info.source as { file?: string; layout?: string; tag?: string } | null;
    const pp = info.preprocessing as { input_size: number; crop_pct: number; crop_mode: string } | null;
    lines.splice(1, 0, `  directory    ${info.dir}`);
    if (src) lines.push(`  source       ${[src.tag, src.file, src.layout && `layout ${src.layout}`].filter(Boolean).join(', ')}`);
    if (pp) lines.push(`  input        ${pp.input_size}x${pp.input_size} (crop_pct ${pp.crop_pct}, ${pp.crop_mode})`);
    lines.push(`  labels       ${info.labels || 'none stored'}    storage ${info.storage}`);
  }
  return lines.join('\n');
}
