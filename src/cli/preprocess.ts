/** `convnext preprocess <image> --output x.npy [--size 224] [--crop-pct 0.875]`: the eval transform as float32 NCHW [1, 3, H, W]. */
import { Command, InvalidArgumentError } from 'commander';
import { decodeImage } from '../data/decode';
import { evalTransform, toNchw } from '../data/transforms';
import { writeNpy } from '../io/npy';
import { positiveInt } from './predict';

function cropPct(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError('must be in (0, 1]');
  return n;
}

export function registerPreprocess(program: Command): void {
  program
    .command('preprocess')
    .description('apply the eval transform (resize shorter side to size/crop_pct bicubic, centre crop, normalise) and write float32 NCHW [1, 3, H, W] .npy')
    .argument('<image>', 'image file')
    .requiredOption('--output <x.npy>', 'output .npy')
    .option('--size <n>', 'crop size', positiveInt, 224)
    .option('--crop-pct <f>', 'crop fraction: the shorter side is resized to floor(size / crop_pct); 1.0 with --squash warps', cropPct, 0.875)
    .option('--squash', 'warp the whole image to size x size (timm crop_mode squash, 384+ models)')
    .option('--interpolation <mode>', 'bicubic | bilinear', 'bicubic')
    .action(async (image: string, o: { output: string; size: number; cropPct: number; squash?: boolean; interpolation: string }) => {
      if (o.interpolation !== 'bicubic' && o.interpolation !== 'bilinear') throw new InvalidArgumentError(`--interpolation must be bicubic or bilinear, got ${o.interpolation}`);
      const img = await decodeImage(image);
      const nhwc = evalTransform(img, { inputSize: o.size, cropPct: o.cropPct, cropMode: o.squash ? 'squash' : 'center', interpolation: o.interpolation });
      writeNpy(o.output, toNchw(nhwc));
    });
}
