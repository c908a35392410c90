/**
 * The bundled ImageNet-1k class names (assets/imagenet1k_labels.json), read from the package in
 * Node. The browser build swaps in imagenet_labels.browser.ts, which bundles the JSON.
 */
import * as fs from 'fs';
import * as path from 'path';

export function readImagenet1kLabels(): string[] {
  const file = path.join(__dirname, '../../../assets/imagenet1k_labels.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')) as string[];
}
