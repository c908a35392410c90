/**
 * The one rule for what a model name means, used by createModel, loadModel, Predictor.load and every
 * CLI option that takes a model (--model, --init, bench --arch, info), as timm's create_model reads
 * `arch` or `arch.tag`:
 *
 *   'convnext_tiny'              an architecture (src/model/configs). Where weights are needed, its
 *                                default pretrained tag (timm's pretrained=True), and the result says so;
 *   'convnext_tiny.fb_in1k'      a pretrained tag (src/zoo/registry);
 *   'https://…'                  a converted model directory (or its model.json) over http(s);
 *   anything else                a local path: a converted model directory, a training run directory
 *                                (its model/), or a PyTorch checkpoint (.pth/.pt/.bin/.safetensors).
 *
 * A string that looks like a name (no path separator, no file extension) and is neither an
 * architecture nor a tag is an error with suggestions, unless such a file or directory exists.
 */
import * as fs from 'fs';
import { ConfigError } from '../errors';
import { MODEL_CONFIGS } from '../model/configs';
import { editDistance } from '../util/strings';
import { defaultPretrained, getPretrained, isZooName, listPretrained } from '../zoo/registry';

export type ModelName =
  /** A registered architecture; no weights. */
  | { kind: 'arch'; arch: string }
  /** A pretrained tag; `defaulted` when a bare architecture was resolved to its default tag. */
  | { kind: 'pretrained'; arch: string; tag: string; defaulted: boolean }
  /** A local file or directory. */
  | { kind: 'path'; path: string }
  /** An http(s) URL of a converted model directory or model.json. */
  | { kind: 'url'; url: string };

const CHECKPOINT_EXT = /\.(pth|pt|bin|safetensors|json|ckpt|tar)$/i;

function looksLikePath(s: string): boolean {
  return /[\\/]/.test(s) || s.startsWith('.') || s.startsWith('~') || CHECKPOINT_EXT.test(s);
}

/** Names within edit distance 2, for "did you mean" hints. */
function suggestions(s: string): string[] {
  const archs = Object.keys(MODEL_CONFIGS).filter((n) => editDistance(n, s) <= 2);
  const tags = listPretrained().filter((n) => editDistance(n, s) <= 3);
  return [...archs, ...tags].slice(0, 5);
}

/**
 * Parses a model name by the rule above.
 * @param weights true where the caller needs weights (a bare architecture then means its default tag)
 */
export function parseModelName(name: string, weights: boolean): ModelName {
  const s = name.trim();
  if (!s) throw new ConfigError('model name is empty');
  if (/^https?:\/\//i.test(s)) return { kind: 'url', url: s };
  if (looksLikePath(s)) return { kind: 'path', path: s };
  const dot = s.indexOf('.');
  const arch = dot < 0 ? s : s.slice(0, dot);
  if (dot >= 0 && isZooName(s)) return { kind: 'pretrained', arch: getPretrained(s).arch ?? arch, tag: s, defaulted: false };
  if (dot < 0 && MODEL_CONFIGS[arch]) {
    if (!weights) return { kind: 'arch', arch };
    const tag = defaultPretrained(arch);
    if (!tag) throw new ConfigError(`${arch} has no pretrained weights in the zoo: give a model directory or checkpoint`);
    return { kind: 'pretrained', arch, tag, defaulted: true };
  }
  if (fs.existsSync(s)) return { kind: 'path', path: s };
  const near = suggestions(s);
  const what =
    dot >= 0 && MODEL_CONFIGS[arch]
      ? `unknown pretrained tag '${s}' for ${arch} (its tags: ${listPretrained(`${arch}.*`).join(', ') || 'none'})`
      : `unknown model '${s}'`;
  throw new ConfigError(
    `${what}: not an architecture (listModels(), \`convnext models\`), a pretrained tag (listPretrained()), nor an existing file or directory` +
      (near.length && !(dot >= 0 && MODEL_CONFIGS[arch]) ? ` (did you mean ${near.join(', ')}?)` : ''),
  );
}

/** The architecture a name denotes without loading anything (arch or tag); undefined for paths and URLs. */
export function archOf(name: string): string | undefined {
  const n = parseModelName(name, false);
  return n.kind === 'arch' || n.kind === 'pretrained' ? n.arch : undefined;
}
