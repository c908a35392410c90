/**
 * The FCMAE encoder run densely with masks (Woo et al. 2023 Sec. 3; ../shared/FCMAE.md sec. 2.2):
 * our ConvNeXt V2 weights, with the visible indicator v_s applied wherever the official sparse
 * (MinkowskiEngine) encoder would have no site, so that visible outputs equal the sparse ones and
 * masked inputs cannot leak into them:
 *
 *   stem (conv 4x4/4 + LN, full image) -> x * v1
 *   block: a = x * v ; a = dwconv7x7(a) * v ; LN ; fc1 ; GELU ; GRN over visible sites ; fc2 ;
 *          x = (x + a) * v                           (the last mask: masked sites become dense() zeros)
 *   downsample: LN ; conv 2x2/2 ; * v_{s+1}           (a 2x2 window never straddles a 32-px patch)
 *   output [N, H/32, W/32, C3], zeros at masked patches
 *
 * Pixels are not masked (the official code masks the stem output). NHWC throughout; the weights are
 * the model's (timm names), shared, not copied. Drop path is 0 in FCMAE and not applied.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConvNeXt } from '../model/convnext';
import { depthwiseConv } from '../layers/depthwise_conv';
import { gelu } from '../layers/gelu';
import { layerNorm } from '../layers/layer_norm';
import { linear } from '../layers/linear';
import { FcmaeError } from '../errors';
import { GrnStats, maskedGrn } from './masked_grn';

export class FcmaeEncoder {
  private readonly w: Map<string, tf.Variable>;

  /** @param model a ConvNeXt V2 (GRN, no layer scale); the encoder borrows its weights. */
  constructor(readonly model: ConvNeXt) {
    const c = model.config;
    if (c.version !== 2 || !c.useGrn) throw new FcmaeError(`FCMAE needs a ConvNeXt V2 encoder (GRN), got ${c.name} (V${c.version})`);
    if (c.patchSize !== 4 || c.kernelSize % 2 !== 1)
      throw new FcmaeError(`FCMAE needs the stride-4 stem (patch 4) and an odd depthwise kernel, got patch ${c.patchSize}, kernel ${c.kernelSize}`);
    this.w = model.getWeights();
  }

  private p<T extends tf.Tensor>(name: string): T {
    const v = this.w.get(name);
    if (!v) throw new FcmaeError(`encoder weight ${name} is missing`);
    return v as unknown as T;
  }

  /** The encoder's trainable weights (the model's, without the final norm and head FCMAE never uses). */
  parameters(): Map<string, tf.Variable> {
    return new Map([...this.model.getWeights()].filter(([n]) => !n.startsWith('head.')));
  }

  /**
   * @param x       [N, H, W, 3] NHWC, normalised; H = W divisible by 32
   * @param visible the four stage maps [N, H/4.., W/4.., 1] (stageVisibleMaps), 1 = visible
   * @returns [N, H/32, W/32, C3], exactly 0 at masked patches
   */
  forward(x: tf.Tensor4D, visible: tf.Tensor4D[], grnStats: GrnStats = 'image'): tf.Tensor4D {
    const c = this.model.config;
    if (visible.length !== 4) throw new FcmaeError(`encoder needs 4 stage visibility maps, got ${visible.length}`);
    return tf.tidy(() => {
      let y = tf.fused.conv2d({ x, filter: this.p<tf.Tensor4D>('stem.conv.weight'), strides: 4, pad: 'valid', bias: this.p('stem.conv.bias') });
      y = layerNorm(y, this.p('stem.norm.weight'), this.p('stem.norm.bias'), c.lnEps);
      y = tf.mul<tf.Tensor4D>(y, visible[0]);
      for (let s = 0; s < 4; s++) {
        const v = visible[s];
        if (s > 0) {
          const d = `stages.${s}.downsample`;
          y = layerNorm(y, this.p(`${d}.norm.weight`), this.p(`${d}.norm.bias`), c.lnEps);
          y = tf.fused.conv2d({ x: y, filter: this.p<tf.Tensor4D>(`${d}.conv.weight`), strides: 2, pad: 'valid', bias: this.p(`${d}.conv.bias`) });
          y = tf.mul<tf.Tensor4D>(y, v);
        }
        if (y.shape[1] !== v.shape[1] || y.shape[2] !== v.shape[2] || y.shape[0] !== v.shape[0]) {
          throw new FcmaeError(`stage ${s}: feature map [${y.shape}] does not match its mask [${v.shape}]`);
        }
        for (let b = 0; b < c.depths[s]; b++) y = this.block(`stages.${s}.blocks.${b}`, y, v, grnStats);
      }
      return y;
    });
  }

  private block(pre: string, x: tf.Tensor4D, v: tf.Tensor4D, grnStats: GrnStats): tf.Tensor4D {
    const eps = this.model.config.lnEps;
    let a = tf.mul<tf.Tensor4D>(x, v);
    a = tf.mul<tf.Tensor4D>(depthwiseConv(a, this.p<tf.Tensor4D>(`${pre}.conv_dw.weight`), this.p(`${pre}.conv_dw.bias`)), v);
    a = layerNorm(a, this.p(`${pre}.norm.weight`), this.p(`${pre}.norm.bias`), eps);
    a = gelu(linear(a, this.p(`${pre}.mlp.fc1.weight`), this.p(`${pre}.mlp.fc1.bias`)));
    a = maskedGrn(a, v, this.p(`${pre}.mlp.grn.weight`), this.p(`${pre}.mlp.grn.bias`), grnStats);
    a = linear(a, this.p(`${pre}.mlp.fc2.weight`), this.p(`${pre}.mlp.fc2.bias`));
    return tf.mul<tf.Tensor4D>(tf.add(x, a), v);
  }
}
