/** `convnext preprocess <image> --output x.npy [--size 224] [--crop-pct 0.875]`: the eval transform as float32 NCHW [1, 3, H, W]. */
import { Command, InvalidArgumentError } from 'commander';
import { decodeImage } from '../data/decode';
import { evalTransform, toNchw } from '../data/transforms';
import { writeNpy } from '../io/npy';
import { checkOutputFile } from '../io/output';
import { MAX_PIXELS_HELP, maxPixelsArg, positiveInt } from './options';
import { MAX_IMAGE_PIXELS } from '../data/decode';

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
    .option('--max-image-pixels <n>', MAX_PIXELS_HELP, maxPixelsArg, MAX_IMAGE_PIXELS)
    .action(async (image: string, o: { output: string; size: number; cropPct: number; squash?: boolean; interpolation: string; maxImagePixels: number }) => {
      if (o.interpolation !== 'bicubic' && o.interpolation !== 'bilinear')
        throw new InvalidArgumentError(`--interpolation must be bicubic or bilinear, got ${o.interpolation}`);
      checkOutputFile(o.output, '--output');
      const img = await decodeImage(image, { maxImagePixels: o.maxImagePixels });
      const nhwc = evalTransform(img, { inputSize: o.size, cropPct: o.cropPct, cropMode: o.squash ? 'squash' : 'center', interpolation: o.interpolation });
      const x = toNchw(nhwc);
      writeNpy(o.output, x);
      const how = o.squash
        ? `squash to ${Math.floor(o.size / o.cropPct)}`
        : `resize ${Math.floor(o.size / o.cropPct)} ${o.interpolation}, centre crop ${o.size}`;
      process.stderr.write(`wrote float32 NCHW [${x.shape.join(', ')}] to ${o.output} (${image} ${img.width}x${img.height}: ${how}, normalised)\n`);
    });
}
