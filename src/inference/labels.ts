/**
 * Class names for a model's logits: labels stored with the model, a user labels file, or the
 * bundled ImageNet-1k names (torchvision's list, index-aligned with every official 1000-class head).
 */
import * as fs from 'fs';
import { ConvNeXtError } from '../errors';
import { ModelMeta } from '../model/meta';
import { readImagenet1kLabels } from './imagenet_labels';

let imagenet1k: string[] | null = null;

/** The 1000 ImageNet-1k class names, index-aligned with official heads ('tench', 'goldfish', ...). */
export function imagenet1kLabels(): string[] {
  imagenet1k ??= readImagenet1kLabels();
  return imagenet1k;
}

/**
 * Reads a labels file: a JSON array of names, or plain text with one name per line (blank lines
 * skipped).
 */
export function readLabelsFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConvNeXtError(`labels ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if (text.trimStart().startsWith('[')) {
    let arr: unknown;
    try {
      arr = JSON.parse(text);
    } catch (e) {
      throw new ConvNeXtError(`labels ${file}: invalid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(arr) || !arr.every((s) => typeof s === 'string')) throw new ConvNeXtError(`labels ${file}: expected a JSON array of strings`);
    return arr;
  }
  return text
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Labels for a model: explicit > stored with the model > ImageNet-1k for 1000-class heads > class_<i>. */
export function resolveLabels(numClasses: number, meta?: Partial<ModelMeta>, explicit?: string[]): string[] {
  const chosen = explicit ?? meta?.labels;
  if (chosen) {
    if (chosen.length !== numClasses) {
      throw new ConvNeXtError(`${chosen.length} labels for a ${numClasses}-class model`);
    }
    return chosen;
  }
  if (numClasses === 1000) return imagenet1kLabels();
  return Array.from({ length: numClasses }, (_, i) => `class_${i}`);
}
