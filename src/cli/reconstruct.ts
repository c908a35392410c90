/**
 * `convnext reconstruct <image | x.npy> --model <FCMAE checkpoint | pretrain run> [--mask mask.npy |
 *  --mask-ratio 0.6 --seed S] [--grn-stats image|batch] [--output grid.png] [--pred pred.npy] [--json]`
 *
 * x.npy: float32 NCHW [N, 3, H, W], normalised, H = W divisible by 32 (PyTorch's layout; transposed
 * to NHWC here). mask.npy: float32 [N, L], L = (H/32)^2, 1 = masked, patch l = i*(W/32)+j.
 * --pred writes the raw decoder output float32 [N, L, 32*32*3] in the official patchify order.
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { Command, InvalidArgumentError } from 'commander';
import { decodeImage } from '../data/decode';
import { evalTransform } from '../data/transforms';
import { FcmaeError } from '../errors';
import { PatchMask } from '../fcmae/mask';
import { loadFcmae, reconstruct } from '../fcmae/reconstruct';
import { encodePng } from '../data/png';
import { encodeNpy, readNpyFloat32 } from '../io/npy';
import { writeFileAtomic } from '../util/fs';
import { withBackend } from './common';
import { grnStatsArg } from './pretrain';
import { positiveInt } from './options';

function ratio(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError('must be in [0, 1)');
  return n;
}

async function readInput(file: string, size: number): Promise<tf.Tensor4D> {
  if (path.extname(file).toLowerCase() === '.npy') {
    const a = readNpyFloat32(file);
    if (a.shape.length !== 4 || a.shape[1] !== 3) throw new FcmaeError(`${file}: expected float32 NCHW [N, 3, H, W], got [${a.shape}]`);
    return tf.tidy(() => tf.transpose(tf.tensor4d(a.data, a.shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D);
  }
  const x = evalTransform(await decodeImage(file), { inputSize: size, cropPct: 1 });
  return tf.tensor4d(x.data, x.shape as [number, number, number, number]);
}

export function registerReconstruct(program: Command): void {
  program
    .command('reconstruct')
    .description('mask an image (or x.npy batch) and reconstruct it with a pretrained FCMAE; writes a grid and/or the raw prediction')
    .argument('<input>', 'an image, or x.npy: float32 NCHW [N, 3, H, W] normalised, H = W divisible by 32')
    .requiredOption('--model <source>', 'a `convnext pretrain` run directory, its checkpoint.safetensors, or an FB2 FCMAE checkpoint (.pth)')
    .option('--mask <mask.npy>', 'float32 [N, L], 1 = masked, patch l = i*(W/32)+j')
    .option('--mask-ratio <f>', 'random mask ratio (without --mask)', ratio, 0.6)
    .option('--seed <n>', 'random mask seed', Number, 0)
    .option('--grn-stats <mode>', "encoder GRN statistics: 'image' or 'batch'", grnStatsArg, 'image' as const)
    .option('--image-size <n>', 'side an image is resized and centre-cropped to (not for .npy)', positiveInt, 224)
    .option('--output <grid.png>', 'original | masked | reconstruction | reconstruction + visible, one row per image')
    .option('--pred <pred.npy>', 'raw decoder output float32 [N, L, 3072], official patchify order')
    .option('--json', 'one JSON object: loss, n, patches, masked, output, pred')
    .action(
      async (
        input: string,
        o: {
          model: string;
          mask?: string;
          maskRatio: number;
          seed: number;
          grnStats: 'image' | 'batch';
          imageSize: number;
          output?: string;
          pred?: string;
          json?: boolean;
        },
      ) => {
        await withBackend(program);
        const x = await readInput(input, o.imageSize);
        const f = await loadFcmae(o.model, { grnStats: o.grnStats, maskRatio: o.maskRatio });
        try {
          let mask: PatchMask | undefined;
          if (o.mask) {
            const m = readNpyFloat32(o.mask);
            if (m.shape.length !== 2) throw new FcmaeError(`${o.mask}: expected float32 [N, L], got [${m.shape}]`);
            mask = { n: m.shape[0], l: m.shape[1], data: m.data };
          }
          const r = reconstruct(f, x, { mask, seed: o.seed });
          if (o.output) writeFileAtomic(o.output, encodePng(r.grid));
          if (o.pred) writeFileAtomic(o.pred, encodeNpy({ shape: r.predShape, data: r.pred }));
          const masked = r.mask.data.reduce((a, v) => a + v, 0);
          if (o.json)
            process.stdout.write(
              JSON.stringify({ loss: r.loss, n: r.mask.n, patches: r.mask.l, masked, output: o.output ?? null, pred: o.pred ?? null }) + '\n',
            );
          else
            process.stdout.write(
              `loss ${r.loss.toFixed(4)} on ${masked} masked of ${r.mask.n * r.mask.l} patches` +
                (o.output ? `; grid in ${o.output}` : '') +
                (o.pred ? `; prediction in ${o.pred}` : '') +
                '\n',
            );
        } finally {
          f.dispose();
          x.dispose();
        }
      },
    );
}
