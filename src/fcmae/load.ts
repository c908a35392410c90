/**
 * Builds an Fcmae from weights in either official FCMAE layout (weights-converter/fcmae_layout.ts): the encoder's
 * architecture and the decoder's width and depth are inferred from shapes. A pt_only file (encoder
 * only) gets a freshly initialised decoder.
 */
import * as tf from '@tensorflow/tfjs-core';
import { inferConfig } from '../../weights-converter/layouts';
import { CheckpointError } from '../../weights-converter/errors';
import { readCheckpoint } from '../../weights-converter/read';
import { ConvNeXt } from '../model/convnext';
import { FcmaeWeights, fcmaeFromStateDict, withInitHeadNorm } from '../../weights-converter/fcmae_layout';
import { Fcmae, FcmaeOptions } from './fcmae';

/** A numClasses-0 ConvNeXt V2 from FCMAE encoder weights. */
export function encoderModelFrom(w: FcmaeWeights, file = '<checkpoint>'): ConvNeXt {
  const config = inferConfig(w.encoder, { layout: 'official', file });
  const all = withInitHeadNorm(w.encoder, config.dims[3]);
  const tensors = new Map([...all].map(([k, v]) => [k, tf.tensor(v.data, v.shape, 'float32')]));
  try {
    return new ConvNeXt(config, 0, tensors);
  } finally {
    tf.dispose([...tensors.values()]);
  }
}

/** Fcmae from converted weights; options override everything but the inferred shapes. */
export function fcmaeFromWeights(w: FcmaeWeights, opts: FcmaeOptions = {}, file = '<checkpoint>'): Fcmae {
  const model = encoderModelFrom(w, file);
  const hasDecoder = w.decoder.size > 0;
  const f = new Fcmae(model, {
    ...opts,
    decoderDim: w.decoderDim ?? opts.decoderDim,
    decoderDepth: w.decoderDepth ?? opts.decoderDepth,
    init: hasDecoder ? 'zeros' : opts.init === 'zeros' ? 'official' : opts.init,
  });
  f.hasTrainedDecoder = hasDecoder;
  if (hasDecoder) {
    const params = f.decoder.parameters();
    const tensors = new Map([...w.decoder].map(([k, v]) => [k, tf.tensor(v.data, v.shape, 'float32')]));
    try {
      const missing = [...params.keys()].filter((k) => !tensors.has(k));
      const unexpected = [...tensors.keys()].filter((k) => !params.has(k));
      const bad = [...tensors]
        .filter(([k, t]) => params.has(k) && !tf.util.arraysEqual(params.get(k)!.shape, t.shape))
        .map(([k, t]) => `${k}: [${t.shape}] vs [${params.get(k)!.shape}]`);
      if (missing.length || unexpected.length || bad.length) {
        f.dispose();
        throw new CheckpointError(
          file,
          `decoder weights do not fit: missing ${missing.join(', ') || '-'}; unexpected ${unexpected.join(', ') || '-'}; mismatched ${bad.join('; ') || '-'}`,
        );
      }
      for (const [k, t] of tensors) params.get(k)!.assign(t);
    } finally {
      tf.dispose([...tensors.values()]);
    }
  }
  return f;
}

/** Reads an FCMAE checkpoint file (either official layout; .pth or .safetensors). */
export async function loadFcmaeCheckpoint(file: string, opts: FcmaeOptions = {}): Promise<Fcmae> {
  const ckpt = await readCheckpoint(file);
  return fcmaeFromWeights(fcmaeFromStateDict(ckpt.tensors, file), opts, file);
}
