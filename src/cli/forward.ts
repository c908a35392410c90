/**
 * `convnext forward --model M --input in.npy --output out.npy [--features]`: the contract parity
 * tools use. in.npy: float32 NCHW [N, 3, H, W] (PyTorch layout), already normalised. out.npy: float32
 * logits [N, classes], or with --features the pre-logits embedding [N, C] (pool -> final LN).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { ShapeError } from '../errors';
import { readNpyFloat32, writeNpy } from '../io/npy';
import { loadModel } from '../factory';
import { checkOutputFile } from '../io/output';
import { withBackend } from './common';

export function registerForward(program: Command): void {
  program
    .command('forward')
    .description('run the model on an .npy batch (float32 NCHW, normalised) and write logits or pre-logits as .npy')
    .requiredOption('--model <model>', 'converted model directory / model.json / URL, or a PyTorch checkpoint')
    .requiredOption('--input <in.npy>', 'float32 NCHW [N, 3, H, W], already normalised')
    .requiredOption('--output <out.npy>', 'where to write float32 [N, classes] (or [N, C] with --features)')
    .option('--features', 'write the pooled pre-logits embedding instead of logits')
    .action(async (opts: { model: string; input: string; output: string; features?: boolean }) => {
      checkOutputFile(opts.output, '--output');
      await withBackend(program);
      const input = readNpyFloat32(opts.input);
      if (input.shape.length !== 4 || input.shape[1] !== 3) {
        throw new ShapeError(`input ${opts.input}: expected float32 NCHW [N, 3, H, W], got shape [${input.shape.join(', ')}]`);
      }
      const { model } = await loadModel(opts.model);
      try {
        const out = tf.tidy(() => {
          const nchw = tf.tensor4d(input.data, input.shape as [number, number, number, number]);
          const x = tf.transpose(nchw, [0, 2, 3, 1]) as tf.Tensor4D;
          return opts.features ? model.embed(x) : model.forward(x);
        });
        const data = (await out.data()) as Float32Array;
        writeNpy(opts.output, { shape: out.shape, data });
        process.stderr.write(`wrote float32 ${opts.features ? 'pre-logits' : 'logits'} [${out.shape.join(', ')}] to ${opts.output}\n`);
        out.dispose();
      } finally {
        model.dispose();
      }
    });
}
