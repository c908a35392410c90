/** Browser variant of imagenet_labels.ts: the class names are bundled (about 20 KB). */
import labels from '../../assets/imagenet1k_labels.json';

export function readImagenet1kLabels(): string[] {
  return labels as string[];
}
