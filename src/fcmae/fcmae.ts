/**
 * FCMAE: the fully convolutional masked autoencoder of ConvNeXt V2 (Woo et al. 2023, Sec. 3;
 * FB2 models/fcmae.py), dense-masked on our layers. Encoder = a ConvNeXt V2 (numClasses 0) run with
 * masks (encoder.ts); decoder = proj + mask token + V2 blocks + pred (decoder.ts); loss = norm-pix
 * MSE over masked patches (loss.ts). Inputs NHWC [N, H, W, 3] normalised, H = W divisible by 32.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConvNeXt } from '../model/convnext';
import { createModel } from '../factory';
import { resolveConfig } from '../model/configs';
import { ParamGroup } from '../train/adamw';
import { FcmaeDecoder } from './decoder';
import { FcmaeEncoder } from './encoder';
import { FcmaeError } from '../errors';
import { FcmaeInit, fcmaeInitValue } from './init';
import { fcmaeLoss } from './loss';
import { FCMAE_PATCH, PatchMask, checkMask, randomMask, stageVisibleMaps, visibleMap } from './mask';
import { GrnStats } from './masked_grn';

export interface FcmaeOptions {
  /** Decoder width D (default 512). */
  decoderDim?: number;
  /** Decoder V2 blocks (default 1). */
  decoderDepth?: number;
  /** Masking ratio (default 0.6). */
  maskRatio?: number;
  /** GRN statistics in the encoder: per image (default, the JAX recipe) or pooled over the batch (PyTorch MinkowskiGRN). */
  grnStats?: GrnStats;
  /** Weight init: 'official' (FB2 fcmae.py, default), 'convnext' (std 0.02), or 'zeros' (weights loaded right after). */
  init?: FcmaeInit | 'zeros';
  /** Seed of the init. */
  seed?: number;
  /** Norm-pix target (default true, as main_pretrain). */
  normPixLoss?: boolean;
}

export interface FcmaeOutput {
  /** Scalar loss over masked patches. */
  loss: tf.Scalar;
  /** [N, L, 32*32*3] raw decoder output, official patchify order. */
  pred: tf.Tensor3D;
  /** [N, H/32, W/32, C3] encoder output, 0 at masked patches. */
  latent: tf.Tensor4D;
}

export class Fcmae {
  readonly encoderModel: ConvNeXt;
  readonly encoder: FcmaeEncoder;
  readonly decoder: FcmaeDecoder;
  readonly maskRatio: number;
  readonly grnStats: GrnStats;
  readonly normPixLoss: boolean;
  /** False when the decoder is freshly initialised (built from an encoder-only checkpoint). */
  hasTrainedDecoder = true;

  /**
   * @param arch a V2 registry name ('convnextv2_atto') or config; built with numClasses 0
   * @param encoder an existing V2 model to pretrain instead (its weights are used and owned from here on)
   */
  constructor(arch: Parameters<typeof resolveConfig>[0] | ConvNeXt, opts: FcmaeOptions = {}) {
    this.maskRatio = opts.maskRatio ?? 0.6;
    this.grnStats = opts.grnStats ?? 'image';
    this.normPixLoss = opts.normPixLoss ?? true;
    if (!(this.maskRatio >= 0 && this.maskRatio < 1)) throw new FcmaeError(`mask ratio must be in [0, 1), got ${this.maskRatio}`);
    if (this.grnStats !== 'image' && this.grnStats !== 'batch') throw new FcmaeError(`grnStats must be 'image' or 'batch', got ${String(this.grnStats)}`);
    const init = opts.init ?? 'official';
    if (arch instanceof ConvNeXt) this.encoderModel = arch;
    else {
      const cfg = typeof arch === 'string' ? resolveConfig(arch, { numClasses: 0 }) : resolveConfig(arch, { numClasses: 0 });
      this.encoderModel = createModel(cfg, { init: 'zeros' });
      // FCMAE never uses the final norm; keep it at its init (weight 1) so that the encoder's
      // embedding is pool -> LayerNorm at init, as timm's convnextv2_*.fcmae (zeros would embed 0)
      const w = this.encoderModel.getWeights().get('head.norm.weight');
      if (w) tf.tidy(() => w.assign(tf.onesLike(w)));
    }
    this.encoder = new FcmaeEncoder(this.encoderModel);
    this.decoder = new FcmaeDecoder({ inDim: this.encoderModel.config.dims[3], dim: opts.decoderDim ?? 512, depth: opts.decoderDepth ?? 1 });
    if (init !== 'zeros') {
      const seed = opts.seed ?? 0;
      for (const [name, v] of this.parameters()) {
        if (arch instanceof ConvNeXt && !this.isDecoderParam(name)) continue;
        const t = fcmaeInitValue(name, v.shape, init, seed);
        v.assign(t);
        t.dispose();
      }
    }
  }

  private isDecoderParam(name: string): boolean {
    return /^(proj\.|mask_token$|decoder\.|pred\.)/.test(name);
  }

  /** Every trainable parameter: encoder (timm names, no head) then decoder (proj, mask_token, decoder.i, pred). */
  parameters(): Map<string, tf.Variable> {
    return new Map([...this.encoder.parameters(), ...this.decoder.parameters()]);
  }

  /**
   * The pretraining weight-decay groups (timm 0.3.2 add_weight_decay in FB2 main_pretrain): no decay
   * for biases and LayerNorm weights (1-D in PyTorch); decay for everything else, GRN gamma/beta
   * ([1, C] / [1,1,1,C] there) and mask_token included (../shared/FCMAE.md pitfall P6).
   */
  paramGroups(): Map<string, ParamGroup> {
    const out = new Map<string, ParamGroup>();
    for (const name of this.parameters().keys()) {
      // our GRN beta is 'mlp.grn.bias' (official 'grn.beta', decayed); every other bias is not.
      const noDecay = (name.endsWith('.bias') && !name.endsWith('grn.bias')) || name.endsWith('norm.weight');
      out.set(name, { lrScale: 1, decay: !noDecay });
    }
    return out;
  }

  /** A seeded random mask for a batch of n images of side `size`. */
  randomMask(n: number, size: number, seed: number | string): PatchMask {
    if (size % FCMAE_PATCH !== 0) throw new FcmaeError(`image side ${size} is not divisible by ${FCMAE_PATCH}`);
    return randomMask(n, (size / FCMAE_PATCH) ** 2, this.maskRatio, seed);
  }

  /**
   * Encoder, decoder and loss with a given mask.
   * @param x    [N, H, W, 3] NHWC normalised, H = W divisible by 32
   * @param mask [N, L] 1 = masked, patch l = i*(W/32)+j
   */
  forward(x: tf.Tensor4D, mask: PatchMask, opts: { grnStats?: GrnStats } = {}): FcmaeOutput {
    if (x.rank !== 4 || x.shape[3] !== 3) throw new FcmaeError(`FCMAE input must be NHWC [N, H, W, 3], got [${x.shape}]`);
    checkMask(mask, x.shape[0], x.shape[1], x.shape[2]);
    const vis = stageVisibleMaps(mask);
    try {
      return tf.tidy(() => {
        const latent = this.encoder.forward(x, vis, opts.grnStats ?? this.grnStats);
        const masked = tf.sub(1, vis[3]) as tf.Tensor4D;
        const pred = this.decoder.forward(latent, masked);
        const m2 = tf.tensor2d(mask.data, [mask.n, mask.l]);
        const loss = fcmaeLoss(x, pred, m2, this.normPixLoss);
        return { loss, pred, latent };
      });
    } finally {
      tf.dispose(vis);
    }
  }

  /** The loss alone (for tf.variableGrads). */
  loss(x: tf.Tensor4D, mask: PatchMask, opts: { grnStats?: GrnStats } = {}): tf.Scalar {
    const { loss, pred, latent } = this.forward(x, mask, opts);
    tf.dispose([pred, latent]);
    return loss;
  }

  /** The patch mask on the H/32 grid as [N, h, w, 1] (1 = masked). */
  static maskGrid(mask: PatchMask): tf.Tensor4D {
    return tf.tidy(() => tf.sub(1, visibleMap(mask, 1)) as tf.Tensor4D);
  }

  dispose(): void {
    this.encoderModel.dispose();
    this.decoder.dispose();
  }
}
