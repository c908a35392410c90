/**
 * The FCMAE decoder (FB2 models/fcmae.py forward_decoder), NHWC:
 *
 *   x = proj(latent)                           1x1 conv C3 -> D (D = decoder_embed_dim, 512)
 *   x = x * (1 - m) + mask_token * m           m: the patch mask on the H/32 grid, token [D]
 *   x = depth x dense ConvNeXt V2 block        (default 1; dense GRN over all positions, no mask)
 *   pred = pred(x)                             1x1 conv D -> 32*32*3, -> [N, L, 3072]
 *
 * Parameter names: proj.*, mask_token, decoder.{i}.<our block names>, pred.*; TF.js layouts (1x1
 * convs as Linear [in, out], mask_token [D]). The official keys are mapped in checkpoint.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { BlockOptions, ConvNeXtBlock } from '../blocks/convnext_block';
import { linear } from '../layers/linear';
import { ParamSpec, ParamStore, spec, zeros } from '../layers/params';
import { FcmaeError } from '../errors';
import { FCMAE_PATCH } from './mask';

export interface DecoderOptions {
  /** Encoder output channels C3. */
  inDim: number;
  /** Decoder width D (512). */
  dim: number;
  /** Number of V2 blocks (1). */
  depth: number;
  /** Output per patch: p*p*3 = 3072. */
  outDim?: number;
}

function blockOptions(dim: number): BlockOptions {
  return { dim, kernelSize: 7, mlpRatio: 4, layerScaleInit: null, useGrn: true, lnEps: 1e-6, dropPathRate: 0 };
}

export function decoderParamSpecs(o: DecoderOptions): ParamSpec[] {
  const out = o.outDim ?? FCMAE_PATCH * FCMAE_PATCH * 3;
  return [
    spec('proj.weight', [o.inDim, o.dim], zeros),
    spec('proj.bias', [o.dim], zeros),
    spec('mask_token', [o.dim], zeros),
    ...Array.from({ length: o.depth }, (_, i) => ConvNeXtBlock.params(`decoder.${i}`, blockOptions(o.dim))).flat(),
    spec('pred.weight', [o.dim, out], zeros),
    spec('pred.bias', [out], zeros),
  ];
}

export class FcmaeDecoder {
  private readonly store: ParamStore;
  private readonly blocks: ConvNeXtBlock[];

  /** Parameters start at zero: FCMAE assigns its init (init.ts) or loaded weights. */
  constructor(readonly options: DecoderOptions) {
    if (!(options.dim > 0 && options.depth >= 0 && Number.isInteger(options.depth))) {
      throw new FcmaeError(`decoder: dim must be > 0 and depth an integer >= 0, got dim ${options.dim}, depth ${options.depth}`);
    }
    this.store = new ParamStore(0, true);
    for (const p of decoderParamSpecs(options)) this.store.add(p);
    this.blocks = Array.from({ length: options.depth }, (_, i) => new ConvNeXtBlock(this.store, `decoder.${i}`, blockOptions(options.dim)));
  }

  parameters(): Map<string, tf.Variable> {
    return this.store.variables();
  }

  private p<T extends tf.Tensor>(name: string): T {
    return this.store.get(name) as unknown as T;
  }

  /**
   * @param latent [N, h, w, C3] encoder output
   * @param masked [N, h, w, 1] the patch mask, 1 = masked
   * @returns      [N, h*w, 3072] prediction per patch, official order
   */
  forward(latent: tf.Tensor4D, masked: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const [n, h, w] = latent.shape;
      let x = linear(latent, this.p('proj.weight'), this.p('proj.bias'));
      x = tf.add(tf.mul(x, tf.sub(1, masked)), tf.mul(this.p<tf.Tensor1D>('mask_token'), masked));
      for (const b of this.blocks) x = b.apply(x, { training: false });
      const y = linear(x, this.p('pred.weight'), this.p('pred.bias'));
      return tf.reshape(y, [n, h * w, y.shape[3]]) as tf.Tensor3D;
    });
  }

  dispose(): void {
    this.store.dispose();
  }
}
