/**
 * Writes an FCMAE model as FB2 main_pretrain saves it (utils.save_model), loadable by torch.load and
 * FB2 main_finetune / remap_checkpoint_keys, through the converter's torch writer:
 *
 *   {'model': OrderedDict(Minkowski names -> float32 tensors), 'epoch': int, 'args': dict}
 *
 * 'args' is a plain dict, not an argparse.Namespace (that needs no global beyond the allowed ones);
 * the AdamW state stays in the run's checkpoint.safetensors.
 */
import { PickleDict } from '../../weights-converter/pickle_writer';
import { writeTorchCheckpoint } from '../../weights-converter/torch_writer';
import { readTensors } from '../util/tensors';
import { fcmaeToOfficial } from '../../weights-converter/fcmae_layout';
import { Fcmae } from './fcmae';

type Scalar = number | string | boolean | null;

/** Writes the full FCMAE (encoder + decoder) in FB2's pretraining checkpoint layout, atomically. */
export async function writeFcmaeCheckpoint(file: string, f: Fcmae, extra: { epoch: number; args: Record<string, Scalar> }): Promise<void> {
  const official = fcmaeToOfficial(await readTensors(f.parameters()));
  writeTorchCheckpoint(file, official, {
    wrapper: 'model',
    extra: [
      ['epoch', extra.epoch],
      ['args', new PickleDict(Object.entries(extra.args))],
    ],
  });
}
